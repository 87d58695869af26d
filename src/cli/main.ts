#!/usr/bin/env node
/**
 * The `allot` command: serve the API, apply migrations, verify the counters.
 * Output meant for people goes to stdout; logs (JSON, one line each) go to stderr.
 */
import { randomBytes } from 'node:crypto';
import { Command, InvalidArgumentError, Option } from 'commander';
import { isIP } from 'node:net';
import { roles, type Role } from '../domain/access.js';
import {
  apiVersion,
  headersTimeoutMsDefault,
  historySampleIntervalMs,
  strongAdminTokenLengthMin,
  idleTimeoutMsDefault,
  metricsOrganizationsDefault,
  metricsOrganizationsMax,
  requestTimeoutMsDefault,
  watchersMax,
  watchersPerPrincipalMaxDefault,
} from '../domain/constants.js';
import { systemClock } from '../domain/clock.js';
import { AllotError } from '../domain/errors.js';
import { openLedger } from '../ledger/ledger.js';
import type { CounterValues } from '../ledger/types.js';
import { openStore } from '../store/open.js';
import { migrate } from '../store/migrations.js';
import { defaultDatabase } from '../store/open.js';
import { addRequestCommands } from './requests.js';
import { startWebhooks, withWebhookOptions, type WebhookOptions } from './webhooks.js';

const out = (line: string) => process.stdout.write(`${line}\n`);

// The server and the controller load what they need when they start: a command that only
// reads or sets a quota starts in a fraction of the time without Fastify and its plugins.
const loadServer = async () => ({
  ...(await import('../api/app.js')),
  ...(await import('../api/jwt.js')),
  ...(await import('../ledger/holds/sweeper.js')),
  ...(await import('../controller/metrics.js')),
  ...(await import('../telemetry/serve.js')),
});
const loadController = () => import('../controller/controller.js');
type ControllerCommandOptions = import('./controller.js').ControllerCommandOptions;

const dbOption = () =>
  new Option('--db <url>', 'database: sqlite:PATH or postgres://… (a primary and its standbys: postgres://h1,h2/db?target_session_attrs=read-write)')
    .env('ALLOT_DB')
    .default(defaultDatabase);

/** Parses a whole number from `min` to `max`; `what` names it in the error message. */
const wholeNumber = (min: number, max: number, what: string) => (value: string) => {
  const number = Number(value);
  if (!Number.isInteger(number) || number < min || number > max) {
    throw new InvalidArgumentError(`must be ${what} from ${min} to ${max}`);
  }
  return number;
};

const parsePort = wholeNumber(0, 65535, 'a port number');
const parseInterval = wholeNumber(10, 3_600_000, 'a number of milliseconds');
const parseTimeout = wholeNumber(100, 3_600_000, 'a number of milliseconds');
const parseStreamCount = wholeNumber(1, watchersMax, 'a whole number');
const parseDrain = wholeNumber(0, 600_000, 'a number of milliseconds');
const historyIntervalOption = () =>
  new Option('--history-interval <ms>', 'time between samples of usage into the history')
    .default(historySampleIntervalMs)
    .argParser(wholeNumber(100, 3_600_000, 'a number of milliseconds'));

/** Addresses or CIDR ranges, as proxy-addr (Fastify's trustProxy) reads them. */
const parseAddressList = (value: string) => {
  const list = value.split(',').map((item) => item.trim()).filter((item) => item.length > 0);
  for (const item of list) {
    const [address, bits, extra] = item.split('/');
    const family = isIP(address ?? '');
    const bitsMax = family === 6 ? 128 : 32;
    if (family === 0 || extra !== undefined || (bits !== undefined && !(/^[0-9]{1,3}$/.test(bits) && Number(bits) <= bitsMax))) {
      throw new InvalidArgumentError(`"${item}" is not an IP address or CIDR range`);
    }
  }
  return list;
};

const program = new Command()
  .name('allot')
  .description('A quota ledger for multi-tenant platforms')
  .version(apiVersion);

const serve = program
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
  .option('--jwt-allow-no-exp', 'accept JWTs without an exp claim (by default they are refused)')
  .addOption(
    new Option('--trust-proxy <addresses>', "proxies whose X-Forwarded-For is believed: comma-separated addresses or CIDR ranges")
      .env('ALLOT_TRUST_PROXY')
      .argParser(parseAddressList),
  )
  .addOption(new Option('--headers-timeout <ms>', "time to receive a request's headers").default(headersTimeoutMsDefault).argParser(parseTimeout))
  .addOption(new Option('--request-timeout <ms>', 'time to receive a whole request, body included').default(requestTimeoutMsDefault).argParser(parseTimeout))
  .addOption(new Option('--idle-timeout <ms>', 'time a kept-alive connection may wait for its next request').default(idleTimeoutMsDefault).argParser(parseTimeout))
  .addOption(
    new Option('--watch-per-principal <count>', 'watch streams one principal may hold open')
      .default(watchersPerPrincipalMaxDefault)
      .argParser(parseStreamCount),
  )
  .addOption(
    new Option('--db-read <url>', 'a replica for reads that tolerate lag: listings, journal pages, history (postgres://…)').env('ALLOT_DB_READ'),
  )
  .addOption(new Option('--drain-ms <ms>', 'on SIGTERM, answer /readyz 503 this long, still serving, then close').default(0).argParser(parseDrain))
  .option('--controller', 'also run the limits controller of --region in this process')
  .option('--region <region>', 'the region this process serves (with --controller)')
  .addOption(new Option('--controller-interval <ms>', 'time between reconcile passes').default(2000).argParser(parseInterval))
  .addOption(historyIntervalOption())
  .addOption(
    new Option('--metrics-organizations <count>', 'organizations with quota and limit series of their own in /metrics (the most utilized; the others are summed)')
      .default(metricsOrganizationsDefault)
      .argParser(wholeNumber(0, metricsOrganizationsMax, 'a whole number')),
  );
withWebhookOptions(serve).action(async (options: ServeOptions) => {
    if (options.controller && options.region === undefined) throw new Error('--controller needs --region');
    if ((options.jwtIssuer === undefined) !== (options.jwtJwks === undefined)) {
      throw new Error('--jwt-issuer and --jwt-jwks go together');
    }
    const { buildApp, drain, jwtVerifier, startSweeper, createMetrics, loggerOptions, exportTraces } = await loadServer();
    const { LimitsController } = await loadController();
    const jwt =
      options.jwtIssuer && options.jwtJwks
        ? jwtVerifier({
            issuer: options.jwtIssuer,
            jwks: options.jwtJwks,
            audience: options.jwtAudience,
            roleClaim: options.jwtRoleClaim,
            organizationClaim: options.jwtOrganizationClaim,
            projectClaim: options.jwtProjectClaim,
            allowNoExpiry: options.jwtAllowNoExp ?? false,
          })
        : undefined;
    let adminToken = process.env.ALLOT_ADMIN_TOKEN ?? '';
    if (adminToken === '') {
      adminToken = randomBytes(24).toString('base64url');
      out(`ALLOT_ADMIN_TOKEN is not set; this run accepts the generated token: ${adminToken}`);
    } else if (adminToken.length < strongAdminTokenLengthMin) {
      process.stderr.write(
        `allot: ALLOT_ADMIN_TOKEN has fewer than ${strongAdminTokenLengthMin} characters: it can be guessed, so an ` +
          'address that fails to authenticate 30 times in a minute is refused it until it has worked here once\n',
      );
    }
    const ledger = await openLedger({ db: options.db, ...(options.dbRead ? { dbRead: options.dbRead } : {}) });
    const metrics = createMetrics(ledger, { organizations: options.metricsOrganizations });
    const app = await buildApp({
      ledger,
      adminToken,
      jwt,
      metrics,
      logger: loggerOptions(process.env.ALLOT_LOG_LEVEL ?? 'info', process.stderr, [adminToken]),
      trustedProxies: options.trustProxy ?? [],
      timeouts: { headersMs: options.headersTimeout, requestMs: options.requestTimeout, idleMs: options.idleTimeout },
      watchersPerPrincipalMax: options.watchPerPrincipal,
      webhookAllow: options.webhookAllow,
    });
    await exportTraces(app);
    const stopSweeper = startSweeper(ledger, (error) => app.log.error({ err: error }, 'sweep failed'));
    const stopWebhooks = await startWebhooks(ledger, options, metrics.registry, (error) => app.log.error({ err: error }, 'webhooks failed'));
    const stopController = options.controller
      ? new LimitsController({
          ledger,
          region: options.region!,
          intervalMs: options.controllerInterval,
          historyIntervalMs: options.historyInterval,
          metrics: metrics.controller,
          onError: (error) => app.log.error({ err: error }, 'reconcile failed'),
        }).start()
      : async () => undefined;
    const address = await app.listen({ host: options.host, port: options.port });
    out(`allot ${apiVersion} listening on ${address} (${ledger.engineName}); dashboard at ${address}/, docs at ${address}/docs`);
    const stop = async () => {
      // A load balancer sees /readyz fail and stops sending; what still arrives is answered.
      drain(app);
      await new Promise((resolve) => setTimeout(resolve, options.drainMs));
      await stopController();
      await Promise.all([stopSweeper(), stopWebhooks()]);
      await app.close();
      await ledger.close();
      process.exit(0);
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });

interface ServeOptions extends WebhookOptions {
  controller?: boolean;
  dbRead?: string;
  region?: string;
  controllerInterval: number;
  historyInterval: number;
  host: string;
  port: number;
  db: string;
  jwtIssuer?: string;
  jwtJwks?: string;
  jwtAudience?: string;
  jwtRoleClaim: string;
  jwtOrganizationClaim: string;
  jwtProjectClaim: string;
  jwtAllowNoExp?: boolean;
  trustProxy?: string[];
  headersTimeout: number;
  requestTimeout: number;
  idleTimeout: number;
  watchPerPrincipal: number;
  metricsOrganizations: number;
  drainMs: number;
}

program
  .command('controller')
  .description(
    "Run the limits controller of one region: keep the host services' trackers in step with the " +
      "limits, and copy the trackers' usage back (runs until stopped; logs failed passes on stderr)",
  )
  .requiredOption('--region <region>', 'the region this controller serves')
  .addOption(new Option('--interval <ms>', 'time between reconcile passes').default(2000).argParser(parseInterval))
  .addOption(historyIntervalOption())
  .option('--once', 'run one pass, print its report and exit')
  .addOption(new Option('--metrics-port <port>', 'serve /metrics and /healthz on this port (0 picks a free one)').argParser(parsePort))
  .option('--metrics-host <host>', 'address the metrics port listens on', '127.0.0.1')
  .addOption(dbOption())
  .action(async (options: ControllerCommandOptions) => (await import('./controller.js')).runController(options, out));

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

const quota = program.command('quota').description("Read and set organizations' quotas and projects' caps and guarantees");

const shown = (value: number | null) => (value === null ? '-' : String(value));

/** Prints rows as aligned columns: a header, then one line per row. */
function table(header: readonly string[], rows: readonly (readonly string[])[]) {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  for (const row of [header, ...rows]) out(row.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd());
}

quota
  .command('show')
  .description("Show an organization's quotas and usage per kind, or with --project a project's quotas (cap and guarantee)")
  .argument('<organization>')
  .option('--project <project>', "show this project's caps, guarantees, usage and what it can still take")
  .option('--json', 'print JSON instead of a table')
  .addOption(dbOption())
  .action(async (organization: string, options: { project?: string; json?: boolean; db: string }) => {
    const ledger = await openLedger({ db: options.db });
    try {
      if (options.project !== undefined) {
        const set = await ledger.getProjectQuotaSet(organization, options.project);
        if (options.json) {
          out(JSON.stringify(set, null, 2));
          return;
        }
        table(
          ['KIND', 'CAP', 'GUARANTEED', 'USED', 'AVAILABLE'],
          set.quotas.map((q) => [q.kind, shown(q.cap), String(q.guaranteed), String(q.used), shown(q.available)]),
        );
      } else {
        const set = await ledger.getQuotaSet(organization);
        if (options.json) {
          out(JSON.stringify(set, null, 2));
          return;
        }
        table(
          ['KIND', 'QUOTA', 'USED', 'GUARANTEED', 'FREE', 'FREE-FOR-ANY-PROJECT'],
          set.quotas.map((q) => [q.kind, shown(q.quantity), String(q.used), String(q.guaranteed), shown(q.free), shown(q.freeForAnyProject)]),
        );
      }
    } finally {
      await ledger.close();
    }
  });

/** "none" (or "-") clears a limit; anything else is a quantity ("40", "1Ti", "2k"). */
const limitArgument = (value: string) => (value === 'none' || value === '-' ? null : value);

quota
  .command('set')
  .description(
    "Set an organization's quota of one kind (--quantity), or with --project a project's cap " +
      'and guarantee of it (--cap, --guaranteed; either left out means none)',
  )
  .argument('<organization>')
  .requiredOption('--kind <kind>', 'the resource kind')
  .option('--quantity <quantity>', `the organization's quota ("none" falls back to the kind's default)`, limitArgument)
  .option('--project <project>', `set this project's cap and guarantee instead`)
  .option('--cap <quantity>', `the project's cap ("none": no cap)`, limitArgument)
  .option('--guaranteed <quantity>', `the project's guarantee ("none": no guarantee)`, limitArgument)
  .option('--force', 'set it even below current usage, leaving the kind over its limit')
  .addOption(dbOption())
  .action(async (organization: string, options: QuotaSetOptions) => {
    const projectWise = options.cap !== undefined || options.guaranteed !== undefined;
    if (options.project === undefined && (projectWise || options.quantity === undefined)) {
      throw new Error('give --quantity for an organization, or --project with --cap and/or --guaranteed');
    }
    if (options.project !== undefined && options.quantity !== undefined) {
      throw new Error('--quantity is the organization\'s quota; a project takes --cap and --guaranteed');
    }
    if (options.project !== undefined && !projectWise) {
      // Setting neither would clear both: say so rather than guess.
      throw new Error('--project takes --cap and/or --guaranteed ("none" clears one)');
    }
    const ledger = await openLedger({ db: options.db });
    try {
      const force = options.force ?? false;
      if (options.project !== undefined) {
        const set = await ledger.setProjectQuotaSet(
          organization,
          options.project,
          [{ kind: options.kind, cap: options.cap ?? null, guaranteed: options.guaranteed ?? null }],
          { force, principal: 'cli' },
        );
        const q = set.quotas.find((item) => item.kind === options.kind)!;
        out(`${organization}/${options.project} ${q.kind}: cap ${shown(q.cap)}, guaranteed ${q.guaranteed}, used ${q.used}, available ${shown(q.available)}`);
      } else {
        const set = await ledger.setQuotaSet(organization, [{ kind: options.kind, quantity: options.quantity! }], {
          force,
          principal: 'cli',
        });
        const q = set.quotas.find((item) => item.kind === options.kind)!;
        out(`${organization} ${q.kind}: quota ${shown(q.quantity)} (${q.source}), used ${q.used}, guaranteed ${q.guaranteed}`);
      }
    } finally {
      await ledger.close();
    }
  });

addRequestCommands(quota, dbOption, out);

interface QuotaSetOptions {
  kind: string;
  quantity?: string | null;
  project?: string;
  cap?: string | null;
  guaranteed?: string | null;
  force?: boolean;
  db: string;
}

program
  .command('project')
  .description('Manage projects')
  .command('delete')
  .description('Delete a project; refused while it has live allocations or pending holds, unless --cascade')
  .argument('<organization>')
  .argument('<project>')
  .option('--cascade', 'delete its allocations and release its holds first (each journaled)')
  .addOption(dbOption())
  .action(async (organization: string, project: string, options: { cascade?: boolean; db: string }) => {
    const ledger = await openLedger({ db: options.db });
    try {
      const ended = await ledger.deleteProject(organization, project, { cascade: options.cascade ?? false, principal: 'cli' });
      out(`project ${organization}/${project} deleted (${ended.allocations} allocations deleted, ${ended.holds} holds released)`);
    } finally {
      await ledger.close();
    }
  });

program
  .command('batch')
  .description(
    "Decide up to 1,000 allocation and hold operations of one organization at once, from a file " +
      'holding the body of POST /v1/organizations/{org}/batch (or its operations alone); exit 1 if any is refused',
  )
  .argument('<organization>')
  .argument('<file>', 'a JSON file, or - for stdin')
  .option('--atomic', 'all or none (else each operation on its own, or the mode the file names)')
  .option('--dry-run', 'decide and answer, write nothing')
  .option('--json', 'print the results as JSON')
  .addOption(dbOption())
  .action(async (organization: string, file: string, options: { atomic?: boolean; dryRun?: boolean; json?: boolean; db: string }) => {
    const { readBatch, describeBatch } = await import('./batch.js');
    const { mode, entries } = readBatch(file, options.atomic ?? false);
    const ledger = await openLedger({ db: options.db });
    try {
      const dryRun = options.dryRun ?? false;
      const result = await ledger.batch(organization, entries, { mode, dryRun, principal: 'cli' });
      if (options.json) {
        out(JSON.stringify(result.results.map((r) => (r.status === 'refused' ? { status: r.status, code: r.error.code, detail: r.error.detail } : r))));
      } else {
        for (const line of describeBatch(entries, result, dryRun)) out(line);
      }
      process.exitCode = result.results.some((r) => r.status === 'refused') ? 1 : 0;
    } finally {
      await ledger.close();
    }
  });

program
  .command('migrate')
  .description('Apply pending schema migrations and exit')
  .addOption(dbOption())
  .action(async (options: { db: string }) => {
    const store = openStore(options.db);
    const applied = await migrate(store, systemClock.nowMs()).finally(() => store.close());
    out(applied.length === 0 ? 'schema is up to date' : `applied migrations ${applied.join(', ')}`);
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
    const values = (v: CounterValues) =>
      `committed=${v.committed} reserved=${v.reserved} held=${v.held}` +
      (v.guaranteed === undefined ? '' : ` guaranteed=${v.guaranteed} shortfall=${v.shortfall}`);
    for (const d of counters) {
      const where = d.project === undefined ? d.organization : `${d.organization}/${d.project}`;
      out(`${where} ${d.kind}: stored ${values(d.stored)}, actual ${values(d.actual)}`);
    }
    let lastReportMs = 0;
    const journal = await ledger.verifyJournal((done, entries) => {
      const nowMs = systemClock.nowMs();
      if (nowMs - lastReportMs < 1000) return;
      lastReportMs = nowMs;
      progress(`replaying journals: ${done} organizations, ${entries} entries`);
    });
    for (const d of journal) {
      const where = d.project === undefined ? d.organization : `${d.organization}/${d.project}`;
      out(`${where} ${d.kind ?? '(journal)'}: ${d.problem}`);
    }
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
  // A refusal names its code (the API's problem type), so scripts can tell them apart.
  const code = error instanceof AllotError ? `${error.code}: ` : '';
  process.stderr.write(`allot: ${code}${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
