/** The webhooks' series in /metrics: delivery attempts by outcome, and failing subscriptions. */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Ledger } from '../ledger/ledger.js';

export function webhookMetrics(registry: Registry, ledger: Ledger) {
  new Gauge({
    name: 'allot_webhook_subscriptions_failing',
    help: 'Subscriptions whose deliveries stopped after their retries ran out (resume them)',
    registers: [registry],
    async collect() {
      this.set(await ledger.failingSubscriptions());
    },
  });
  return {
    attempts: new Counter({
      name: 'allot_webhook_deliveries_total',
      help: 'Webhook delivery attempts, by outcome (delivered, failed)',
      labelNames: ['outcome'],
      registers: [registry],
    }),
  };
}
