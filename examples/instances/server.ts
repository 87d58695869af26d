#!/usr/bin/env node
/**
 * npm run example:instances -- --port P --db sqlite:PATH|postgres://… --region R
 * (ALLOT_ADMIN_TOKEN: the bearer token of /admin/…). Prints "listening on URL" when ready.
 */
import { Command, Option } from 'commander';
import { buildInstancesApp } from './app.js';

const options = new Command()
  .name('instances')
  .description('An example host service that embeds the allot limits mixin')
  .addOption(new Option('--port <port>', 'port (0 picks a free one)').default('8080'))
  .option('--host <host>', 'address to listen on', '127.0.0.1')
  .addOption(new Option('--db <url>', 'sqlite:PATH or postgres://…').default('sqlite:./data/instances.db'))
  .requiredOption('--region <region>', 'the region this host serves')
  .parse()
  .opts<{ port: string; host: string; db: string; region: string }>();

const adminToken = process.env.ALLOT_ADMIN_TOKEN ?? '';
if (adminToken === '') {
  process.stderr.write('instances: set ALLOT_ADMIN_TOKEN (the bearer token of the /admin routes)\n');
  process.exit(1);
}

const { app } = await buildInstancesApp({ db: options.db, region: options.region, adminToken });
const address = await app.listen({ host: options.host, port: Number(options.port) });
process.stdout.write(`instances (${options.region}) listening on ${address}\n`);
const stop = async () => {
  await app.close();
  process.exit(0);
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
