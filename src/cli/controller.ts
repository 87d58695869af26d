/**
 * `allot controller`: the limits controller of one region, in a process of its own. With
 * `--metrics-port` it serves its metrics (`/metrics`) and liveness (`/healthz`) on a port of
 * its own, and prints where on stdout. Loaded only when the command runs.
 */
import { createControllerMetrics } from '../controller/metrics.js';
import { serveMetrics } from '../controller/metrics-server.js';
import { LimitsController } from '../controller/controller.js';
import { openLedger } from '../ledger/ledger.js';

export interface ControllerCommandOptions {
  region: string;
  interval: number;
  historyInterval: number;
  once?: boolean;
  db: string;
  /** Absent: no metrics port; 0: one the system picks. */
  metricsPort?: number;
  metricsHost: string;
}

export async function runController(options: ControllerCommandOptions, out: (line: string) => void): Promise<void> {
  const ledger = await openLedger({ db: options.db });
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const metrics = options.metricsPort === undefined ? undefined : createControllerMetrics(ledger);
  const controller = new LimitsController({
    ledger,
    region: options.region,
    intervalMs: options.interval,
    historyIntervalMs: options.historyInterval,
    metrics: metrics?.controller,
    onError: (error) => log(`reconcile failed: ${error instanceof Error ? error.message : String(error)}`),
  });
  if (options.once) {
    out(JSON.stringify(await controller.reconcileOnce()));
    await ledger.close();
    return;
  }
  const server = metrics && (await serveMetrics(metrics.registry, { host: options.metricsHost, port: options.metricsPort! }));
  const served = server ? `; /metrics and /healthz on ${server.url}` : '';
  out(`allot controller of region ${options.region} running (${ledger.engineName})${served}`);
  const stop = controller.start();
  const shutdown = async () => {
    await stop();
    await server?.close();
    await ledger.close();
    process.exit(0);
  };
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
}
