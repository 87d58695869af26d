/**
 * API tokens. A token is `allot_` and 32 random bytes; the database keeps only its SHA-256
 * digest, so a copy of the database lets nobody in. The token is returned once, when made.
 */
import { createHash, randomBytes } from 'node:crypto';
import { checkScope, roles, type Principal, type Role } from '../../domain/access.js';
import { invalid, notFound } from '../../domain/errors.js';
import type { Executor } from '../../store/store.js';
import { isoOf } from '../time.js';
import { checkId } from '../validate.js';

export interface TokenInput {
  role: Role;
  organization?: string | null;
  project?: string | null;
  /** ISO 8601 time after which the token is refused. */
  expiresAt?: string | null;
}

export interface Token {
  id: string;
  role: Role;
  organization: string | null;
  project: string | null;
  expiresAt: string | null;
  createdBy: string;
  createdAt: string;
  revokedAt: string | null;
}

interface TokenRow {
  id: string;
  digest: string;
  role: Role;
  organization_id: string | null;
  project_id: string | null;
  expires_at: number | null;
  created_by: string;
  created_at: number;
  revoked_at: number | null;
}

export const digestOf = (token: string) => createHash('sha256').update(token).digest('hex');

const tokenOf = (row: TokenRow): Token => ({
  id: row.id,
  role: row.role,
  organization: row.organization_id,
  project: row.project_id,
  expiresAt: row.expires_at === null ? null : isoOf(row.expires_at),
  createdBy: row.created_by,
  createdAt: isoOf(row.created_at),
  revokedAt: row.revoked_at === null ? null : isoOf(row.revoked_at),
});

export function checkTokenInput(input: TokenInput, nowMs: number) {
  if (!roles.includes(input.role)) throw invalid('role', `must be one of ${roles.join(', ')}`);
  const organization = input.organization == null ? null : checkId('organization', input.organization);
  const project = input.project == null ? null : checkId('project', input.project);
  const problem = checkScope(input.role, organization, project);
  if (problem) throw invalid('role', problem);
  let expiresAt: number | null = null;
  if (input.expiresAt != null) {
    expiresAt = Date.parse(input.expiresAt);
    if (Number.isNaN(expiresAt)) throw invalid('expiresAt', 'must be an ISO 8601 date and time');
    if (expiresAt <= nowMs) throw invalid('expiresAt', 'must be in the future');
  }
  return { role: input.role, organization, project, expiresAt };
}

export async function createToken(
  tx: Executor,
  lock: string,
  input: ReturnType<typeof checkTokenInput>,
  createdBy: string,
  nowMs: number,
): Promise<{ token: string; record: Token }> {
  if (input.organization !== null) {
    const found = await tx.get('SELECT 1 AS found FROM organizations WHERE id = ?', [input.organization]);
    if (!found) throw notFound(`organization "${input.organization}"`);
  }
  if (input.project !== null) {
    // Key-share locked: the project's deletion (which revokes its tokens) waits for this one.
    const found = await tx.get(`SELECT 1 AS found FROM projects WHERE organization_id = ? AND id = ? AND deleted_at IS NULL${lock}`, [
      input.organization,
      input.project,
    ]);
    if (!found) throw notFound(`project "${input.project}"`);
  }
  const token = `allot_${randomBytes(32).toString('base64url')}`;
  const row: TokenRow = {
    id: tokenId(),
    digest: digestOf(token),
    role: input.role,
    organization_id: input.organization,
    project_id: input.project,
    expires_at: input.expiresAt,
    created_by: createdBy,
    created_at: nowMs,
    revoked_at: null,
  };
  await tx.run(
    `INSERT INTO tokens (id, digest, role, organization_id, project_id, expires_at, created_by,
      created_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL)`,
    [row.id, row.digest, row.role, row.organization_id, row.project_id, row.expires_at, createdBy, nowMs],
  );
  return { token, record: tokenOf(row) };
}

export async function listTokens(tx: Executor): Promise<Token[]> {
  const rows = await tx.all<TokenRow>('SELECT * FROM tokens ORDER BY created_at, id');
  return rows.map(tokenOf);
}

/** Revokes a token; revoking one that is already revoked changes nothing. */
export async function revokeToken(tx: Executor, id: string, nowMs: number): Promise<void> {
  const row = await tx.get<TokenRow>('SELECT * FROM tokens WHERE id = ?', [id]);
  if (!row) throw notFound(`token "${id}"`);
  if (row.revoked_at === null) await tx.run('UPDATE tokens SET revoked_at = ? WHERE id = ?', [nowMs, id]);
}

/** Who a valid credential stands for, and until when it is valid on its own (null: no expiry). */
export interface TokenGrant {
  principal: Principal;
  expiresAtMs: number | null;
}

/** The principal a token stands for, if it is known, not revoked and not expired. */
export async function principalOfToken(tx: Executor, token: string, nowMs: number): Promise<TokenGrant | undefined> {
  const row = await tx.get<TokenRow>('SELECT * FROM tokens WHERE digest = ?', [digestOf(token)]);
  if (!row || row.revoked_at !== null || (row.expires_at !== null && row.expires_at <= nowMs)) return undefined;
  return {
    principal: { id: `token:${row.id}`, role: row.role, organization: row.organization_id, project: row.project_id },
    expiresAtMs: row.expires_at,
  };
}

/**
 * A token's id: 12 base64url characters that never start with '-' or '_', so the id is never
 * mistaken for an option (`allot token revoke ID`).
 */
function tokenId(): string {
  for (;;) {
    const id = randomBytes(9).toString('base64url');
    if (/^[A-Za-z0-9]/.test(id)) return id;
  }
}
