/**
 * `allot quota request ORG …` files a quota request (and with --wait waits for its outcome);
 * `allot quota request wait ORG ID` waits for one filed earlier. Through the library, as the
 * CLI's other commands: whoever runs it holds the database, so a decrease applies at once.
 * Exit codes: 0 approved (or pending without --wait), 1 denied, cancelled or expired,
 * 3 still pending when the wait ran out.
 */
import { InvalidArgumentError, type Command, type Option } from 'commander';
import { openLedger } from '../ledger/ledger.js';
import type { QuotaRequest } from '../ledger/requests/requests.js';

const waitMsMax = 3_600_000;

/** `30s`, `5m`, `1h`, or milliseconds. */
export function parseWait(value: string): number {
  const match = /^([0-9]{1,7})(ms|s|m|h)?$/.exec(value);
  const unit: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  const ms = match ? Number(match[1]) * unit[match[2] ?? 'ms']! : NaN;
  if (!(ms > 0 && ms <= waitMsMax)) throw new InvalidArgumentError('must be a time such as 30s, 5m or 1h, at most 1h');
  return ms;
}

const describe = (request: QuotaRequest) => {
  const where = request.project === null ? request.organization : `${request.organization}/${request.project}`;
  const what = `${where} ${request.kind} ${request.field} ${request.current ?? 'none'} → ${request.preferred}`;
  if (request.state === 'approved') return `request ${request.id} approved (${what}, granted ${request.granted}, by ${request.decidedBy})`;
  if (request.state === 'denied') return `request ${request.id} denied (${what}): ${request.reason}`;
  return `request ${request.id} ${request.state} (${what})`;
};

const exitCodeOf = (request: QuotaRequest, waited: boolean) =>
  request.state === 'approved' || (request.state === 'pending' && !waited) ? 0 : request.state === 'pending' ? 3 : 1;

interface RequestOptions {
  kind?: string;
  preferred?: string;
  project?: string;
  field?: 'cap' | 'guaranteed';
  justification?: string;
  contact?: string;
  force?: boolean;
  wait?: number;
  db: string;
}

export function addRequestCommands(quota: Command, dbOption: () => Option, out: (line: string) => void): void {
  const request = quota
    .command('request')
    .description('Ask for a quota (or with --project a cap or guarantee): pending until approved, denied, cancelled or expired')
    .argument('<organization>')
    // Checked in the action, not as required options: commander would ask them of `wait` too.
    .option('--kind <kind>', 'the resource kind (required)')
    .option('--preferred <quantity>', 'the value asked for ("40", "1Ti"; required)')
    .option('--project <project>', "ask for this project's cap or guarantee instead")
    .option('--field <field>', 'cap or guaranteed (with --project)')
    .option('--justification <text>', 'why: shown to whoever approves (required)')
    .option('--contact <text>', 'whom to ask about it (required)')
    .option('--force', "request a cut deeper than the kind's safety check allows")
    .option('--wait <time>', 'wait this long for the outcome (30s, 5m; at most 1h)', parseWait)
    .addOption(dbOption())
    .action(async (organization: string, options: RequestOptions) => {
      const missing = (['kind', 'preferred', 'justification', 'contact'] as const).filter((name) => options[name] === undefined);
      if (missing.length > 0) throw new Error(`give ${missing.map((name) => `--${name}`).join(', ')}`);
      if ((options.project === undefined) !== (options.field === undefined)) throw new Error('--project and --field (cap or guaranteed) go together');
      const ledger = await openLedger({ db: options.db });
      try {
        const filed = await ledger.createQuotaRequest(
          organization,
          {
            kind: options.kind!,
            scope: options.project === undefined ? 'organization' : 'project',
            ...(options.project === undefined ? {} : { project: options.project, field: options.field! }),
            preferred: options.preferred!,
            justification: options.justification!,
            contact: options.contact!,
          },
          { principal: 'cli', force: options.force ?? false },
        );
        const outcome = options.wait !== undefined && filed.state === 'pending' ? await ledger.waitForQuotaRequest(organization, filed.id, options.wait) : filed;
        out(describe(outcome));
        process.exitCode = exitCodeOf(outcome, options.wait !== undefined);
      } finally {
        await ledger.close();
      }
    });

  request
    .command('wait')
    .description('Wait for a quota request to leave pending; print how it ended')
    .argument('<organization>')
    .argument('<id>')
    .option('--timeout <time>', 'give up after this long (default 5m, at most 1h)', parseWait, 300_000)
    // --db is the parent's option (commander gives it to `request` wherever it is written).
    .action(async (organization: string, id: string, options: { timeout: number }, command: Command) => {
      const { db } = command.optsWithGlobals<{ db: string }>();
      const ledger = await openLedger({ db });
      try {
        const outcome = await ledger.waitForQuotaRequest(organization, id, options.timeout);
        out(describe(outcome));
        process.exitCode = exitCodeOf(outcome, true);
      } finally {
        await ledger.close();
      }
    });
}
