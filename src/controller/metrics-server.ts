/**
 * The standalone controller's own HTTP port (`allot controller --metrics-port`): `GET /metrics`
 * (its Prometheus registry) and `GET /healthz` (200 while the process runs). node:http rather
 * than Fastify: two fixed routes, no body, nothing to validate. It answers anyone who reaches
 * the port — its metrics name regions and services, never tenants — so bind it to an address
 * only the monitoring system reaches.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

export interface MetricsServer {
  /** http://host:port, with the port the system picked for port 0. */
  url: string;
  close(): Promise<void>;
}

async function answer(registry: Registry, request: IncomingMessage, response: ServerResponse): Promise<void> {
  const path = (request.url ?? '/').split('?')[0];
  if (path !== '/metrics' && path !== '/healthz') {
    response.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    return;
  }
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    response.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('method not allowed\n');
    return;
  }
  if (path === '/healthz') {
    response.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}\n');
    return;
  }
  try {
    const text = await registry.metrics();
    response.writeHead(200, { 'content-type': registry.contentType }).end(request.method === 'HEAD' ? undefined : text);
  } catch {
    response.writeHead(500, { 'content-type': 'text/plain' }).end('metrics could not be collected\n');
  }
}

export async function serveMetrics(registry: Registry, options: { host: string; port: number }): Promise<MetricsServer> {
  const server = createServer((request, response) => void answer(registry, request, response));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { address, port } = server.address() as AddressInfo;
  const host = address.includes(':') ? `[${address}]` : address;
  return {
    url: `http://${host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // A scraper's kept-alive connection would hold the close open until it times out.
        server.closeAllConnections();
      }),
  };
}
