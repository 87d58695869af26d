/** `allot serve`'s webhook options, and starting deliveries and the denial counts with the server. */
import { InvalidArgumentError, Option, type Command } from 'commander';
import type { Registry } from 'prom-client';
import type { Ledger } from '../ledger/ledger.js';
import { noneAllowed, parseAllowList, type AllowList } from '../webhooks/address.js';

export interface WebhookOptions {
  webhookAllow: AllowList;
  webhookTimeout: number;
  webhookAttempts: number;
  webhookBackoff: number;
}

const whole = (min: number, max: number, what: string) => (value: string) => {
  const number = Number(value);
  if (!/^[0-9]+$/.test(value) || number < min || number > max) throw new InvalidArgumentError(`must be ${what} from ${min} to ${max}`);
  return number;
};

const parseAllow = (value: string) => {
  try {
    return parseAllowList(value);
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message);
  }
};

export const withWebhookOptions = (command: Command) =>
  command
    .addOption(
      new Option('--webhook-allow <ranges>', 'addresses webhook targets may have though loopback, private or link-local: comma-separated CIDR ranges')
        .env('ALLOT_WEBHOOK_ALLOW')
        .default(noneAllowed, 'none')
        .argParser(parseAllow),
    )
    .addOption(new Option('--webhook-timeout <ms>', 'time one webhook delivery may take').default(10_000).argParser(whole(100, 120_000, 'milliseconds')))
    .addOption(
      new Option('--webhook-attempts <count>', 'failed deliveries in a row before a subscription is failing').default(10).argParser(whole(1, 100, 'a count')),
    )
    .addOption(
      new Option('--webhook-backoff <ms>', 'the first retry delay, doubled each time up to 5 minutes').default(1000).argParser(whole(10, 300_000, 'milliseconds')),
    );

export async function startWebhooks(ledger: Ledger, options: WebhookOptions, registry: Registry, onError: (error: unknown) => void) {
  const { startDeliveries } = await import('../webhooks/worker.js');
  const { recordDenials } = await import('../webhooks/denials.js');
  const { webhookMetrics } = await import('../webhooks/metrics.js');
  const metrics = webhookMetrics(registry, ledger);
  const denials = recordDenials(ledger, onError);
  const deliveries = startDeliveries(ledger, {
    allow: options.webhookAllow,
    timeoutMs: options.webhookTimeout,
    attemptsMax: options.webhookAttempts,
    backoffMs: options.webhookBackoff,
    onError,
    onAttempt: (outcome) => metrics.attempts.inc({ outcome }),
  });
  return async () => {
    await deliveries.stop();
    await denials.stop();
  };
}
