/**
 * Who may do what, as pure rules. A principal has one role and a scope (an organization, or
 * a project in one). Two questions per request: may it *see* the tenant the request names
 * (no: 404, as if the tenant did not exist, so ids do not leak), and may its role take this
 * *action* there (no: 403).
 */
export const roles = ['service-admin', 'org-admin', 'project-member', 'service', 'reader'] as const;
export type Role = (typeof roles)[number];

export interface Principal {
  /** Recorded on every write: `admin`, `token:<id>`, or `jwt:<subject>`. */
  id: string;
  role: Role;
  organization: string | null;
  project: string | null;
}

/**
 * - read: read a tenant's quotas, allocations, holds;
 * - read-organization: organization-wide reads that show other projects (journal, project list);
 * - allocate: create, change, delete allocations and holds;
 * - create-project: create, rename or delete a project;
 * - partition: set projects' caps and guarantees, dividing the organization's quota among its
 *   projects (never raising it);
 * - report-usage: report a limit's usage from a region's host service. It raises the active
 *   limit (max(configured, usage)), so only service-admins may: the controller itself writes
 *   through the ledger;
 * - request-quota: ask for (and cancel) a quota, cap or guarantee; who may grant it is the
 *   scope's: administer for an organization's quota, partition for a project's;
 * - subscribe: manage the organization's webhook subscriptions (they see its whole journal);
 * - administer: resource kinds, organizations, quotas, limits, tokens.
 */
export type Action =
  | 'read'
  | 'read-organization'
  | 'allocate'
  | 'create-project'
  | 'partition'
  | 'report-usage'
  | 'request-quota'
  | 'subscribe'
  | 'administer';

const allowed: Record<Role, readonly Action[]> = {
  'service-admin': ['read', 'read-organization', 'allocate', 'create-project', 'partition', 'report-usage', 'request-quota', 'subscribe', 'administer'],
  'org-admin': ['read', 'read-organization', 'allocate', 'create-project', 'partition', 'request-quota', 'subscribe'],
  'project-member': ['read', 'allocate', 'request-quota'],
  service: ['read', 'read-organization', 'allocate'],
  reader: ['read', 'read-organization'],
};

export interface Scope {
  organization?: string;
  project?: string;
}

export function canSee(principal: Principal, scope: Scope): boolean {
  if (principal.role === 'service-admin') return true;
  if (scope.organization === undefined) return true;
  if (principal.organization === null) return principal.role === 'service';
  if (principal.organization !== scope.organization) return false;
  if (principal.role !== 'project-member' || scope.project === undefined) return true;
  return principal.project === scope.project;
}

export function canDo(principal: Principal, action: Action): boolean {
  return allowed[principal.role].includes(action);
}

/** What a role needs in its scope: which roles name an organization, which a project. */
export function checkScope(role: Role, organization: string | null, project: string | null): string | null {
  if (role === 'service-admin') return organization === null && project === null ? null : 'a service-admin has no organization or project';
  if (role === 'project-member') return organization !== null && project !== null ? null : 'a project-member needs an organization and a project';
  if (project !== null) return `a ${role} has no project`;
  if (role === 'service') return null;
  return organization !== null ? null : `a ${role} needs an organization`;
}
