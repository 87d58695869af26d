#!/usr/bin/env node
/**
 * The `allot` command: serve the API, apply migrations, verify the counters.
 * Output meant for people goes to stdout; logs (JSON, one line each) go to stderr.
 */
import { randomBytes } from 'node:crypto';
import { Command, InvalidArgumentError, Option } from 'commander';
import { apiVersion, buildApp } from '../api/app.js';
import { jwtVerifier } from '../api/jwt.js';
import { roles, type Role } from '../domain/access.js';
import { systemClock } from '../domain/clock.js';
import { openLedger } from '../ledger/ledger.js';
import { startSweeper } from '../ledger/sweeper.js';
import { migrate } from '../store/migrations.js';
import { defaultDatabase } from '../store/open.js';

const out = (line: string) => process.stdout.write(`${line}\n`);

const dbOption = () =>
  new Option('--db <url>', 'database: sqlite:PATH or postgres://…')
    .env('ALLOT_DB')
    .default(defaultDatabase);

const parsePort = (value: string) => {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new InvalidArgumentError('must be a port number from 0 to 65535');
  }
  return port;
};

const program = new Command()
  .name('allot')
  .description('A quota ledger for multi-tenant platforms')
  .version(apiVersion);

program
  .command('serve')
  .description('Run the HTTP API (migrations are applied on start)')
  .option('--host <host>', 'address to listen on', '127.0.0.1')
  .addOption(new Option('--port <port>', 'port to listen on (0 picks a free one)').env('PORT').default(7070).argParser(parsePort))
  .addOption(dbOption())
  .option('--jwt-issuer <issuer>', 'also accept JWTs from this issuer (OIDC)')
  .option('--jwt-jwks <file-or-url>', "the issuer's keys: a JWKS file or URL")
  .option('--jwt-audience <audience>', 'the audience JWTs must name')
  .option('--jwt-role-claim <name>', 'the claim holding the role', 'allot_role')
  .option('--jwt-organization-claim <name>', 'the claim holding the organization', 'allot_organization')
  .option('--jwt-project-claim <name>', 'the claim holding the project', 'allot_project')
  .action(async (options: ServeOptions) => {
    if ((options.jwtIssuer === undefined) !== (options.jwtJwks === undefined)) {
      throw new Error('--jwt-issuer and --jwt-jwks go together');
    }
    const jwt =
      options.jwtIssuer && options.jwtJwks
        ? jwtVerifier({
            issuer: options.jwtIssuer,
            jwks: options.jwtJwks,
            audience: options.jwtAudience,
            roleClaim: options.jwtRoleClaim,
            organizationClaim: options.jwtOrganizationClaim,
            projectClaim: options.jwtProjectClaim,
          })
        : undefined;
    let adminToken = process.env.ALLOT_ADMIN_TOKEN ?? '';
    if (adminToken === '') {
      adminToken = randomBytes(24).toString('base64url');
      out(`ALLOT_ADMIN_TOKEN is not set; this run accepts the generated token: ${adminToken}`);
    }
    const ledger = await openLedger({ db: options.db });
    const app = await buildApp({
      ledger,
      adminToken,
      jwt,
      logger: { level: process.env.ALLOT_LOG_LEVEL ?? 'info', stream: process.stderr },
    });
    const stopSweeper = startSweeper(ledger, (error) => app.log.error({ err: error }, 'sweep failed'));
    const address = await app.listen({ host: options.host, port: options.port });
    out(`allot ${apiVersion} listening on ${address} (${ledger.store.engine}); docs at ${address}/docs`);
    const stop = async () => {
      await stopSweeper();
      await app.close();
      await ledger.close();
      process.exit(0);
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });

interface ServeOptions {
  host: string;
  port: number;
  db: string;
  jwtIssuer?: string;
  jwtJwks?: string;
  jwtAudience?: string;
  jwtRoleClaim: string;
  jwtOrganizationClaim: string;
  jwtProjectClaim: string;
}

const token = program.command('token').description('Manage API tokens');

token
  .command('create')
  .description('Create an API token; prints it alone on the last line (it is shown only once)')
  .addOption(new Option('--role <role>', 'the token\'s role').choices([...roles]).makeOptionMandatory())
  .option('--org <organization>', 'the organization it is scoped to')
  .option('--project <project>', 'the project it is scoped to (project-member)')
  .option('--expires <time>', 'when it stops working (ISO 8601)')
  .addOption(dbOption())
  .action(async (options: { role: Role; org?: string; project?: string; expires?: string; db: string }) => {
    const ledger = await openLedger({ db: options.db });
    try {
      const created = await ledger.createToken({
        role: options.role,
        organization: options.org ?? null,
        project: options.project ?? null,
        expiresAt: options.expires ?? null,
      });
      out(`token ${created.record.id}: ${created.record.role}` +
        `${created.record.organization ? ` of ${created.record.organization}` : ''}` +
        `${created.record.project ? `/${created.record.project}` : ''}` +
        `${created.record.expiresAt ? `, expires ${created.record.expiresAt}` : ''}`);
      out(created.token);
    } finally {
      await ledger.close();
    }
  });

token
  .command('revoke')
  .description('Revoke an API token by its id')
  .argument('<id>', 'the token id (not the token)')
  .addOption(dbOption())
  .action(async (id: string, options: { db: string }) => {
    const ledger = await openLedger({ db: options.db });
    try {
      await ledger.revokeToken(id);
      out(`token ${id} revoked`);
    } finally {
      await ledger.close();
    }
  });

program
  .command('migrate')
  .description('Apply pending schema migrations and exit')
  .addOption(dbOption())
  .action(async (options: { db: string }) => {
    const ledger = await openLedger({ db: options.db, migrate: false });
    const applied = await migrate(ledger.store, systemClock.nowMs());
    out(applied.length === 0 ? 'schema is up to date' : `applied migrations ${applied.join(', ')}`);
    await ledger.close();
  });

program
  .command('verify')
  .description(
    'Recount every usage counter from the allocations and holds, and replay every journal ' +
      'against the counters; exit 1 on any discrepancy',
  )
  .option('--repair', 'correct the counters that drifted from the allocations (journaled)')
  .addOption(dbOption())
  .action(async (options: { db: string; repair?: boolean }) => {
    const ledger = await openLedger({ db: options.db });
    const progress = (line: string) => process.stderr.write(`${line}\n`);
    progress('recounting the counters from the allocations and holds…');
    const counters = options.repair ? await ledger.repairCounters() : await ledger.verifyCounters();
    for (const d of counters) {
      out(
        `${d.organization} ${d.kind}: stored committed=${d.stored.committed} reserved=${d.stored.reserved} ` +
          `held=${d.stored.held}, actual committed=${d.actual.committed} reserved=${d.actual.reserved} ` +
          `held=${d.actual.held}`,
      );
    }
    let lastReportMs = 0;
    const journal = await ledger.verifyJournal((done, entries) => {
      const nowMs = systemClock.nowMs();
      if (nowMs - lastReportMs < 1000) return;
      lastReportMs = nowMs;
      progress(`replaying journals: ${done} organizations, ${entries} entries`);
    });
    for (const d of journal) out(`${d.organization} ${d.kind ?? '(journal)'}: ${d.problem}`);
    await ledger.close();
    if (options.repair) out(`repaired ${counters.length} counter${counters.length === 1 ? '' : 's'}`);
    const remaining = (options.repair ? 0 : counters.length) + journal.length;
    out(
      remaining === 0
        ? 'all counters match the allocations and the journal'
        : `${remaining} discrepanc${remaining === 1 ? 'y' : 'ies'}`,
    );
    process.exitCode = remaining === 0 ? 0 : 1;
  });

program.parseAsync().catch((error: unknown) => {
  process.stderr.write(`allot: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
