/**
 * Builds the HTTP application without listening, so tests drive it through `inject` and the
 * CLI decides where it listens.
 */
import { sharedCompilers } from './compilers.js';
import { freshReads } from '../ledger/ledger.js';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, {
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  type FastifyServerOptions,
} from 'fastify';
import {
  apiVersion,
  bodyBytesMax,
  headersTimeoutMsDefault,
  idleTimeoutMsDefault,
  requestTimeoutMsDefault,
  watchersPerPrincipalMaxDefault,
} from '../domain/constants.js';
import { AllotError } from '../domain/errors.js';
import type { Ledger } from '../ledger/ledger.js';
import { Authenticator, FailureCounter, installAuth } from './auth.js';
import { installJsonParser } from './json.js';
import type { JwtVerifier } from './jwt.js';
import { installProblemHandlers, sendProblem } from './problems.js';
import { identityCompatRoutes } from './compat/identity.js';
import type { Metrics } from '../controller/metrics.js';
import { documentOptions, schemaOf } from './document.js';
import { installRequestMetrics } from './request-metrics.js';
import { installMethodNotAllowed } from './methods.js';
import type { Api } from './route.js';
import { table } from './routes/table.js';
import { Watchers } from './watchers.js';
import { noneAllowed, type AllowList } from '../webhooks/address.js';
import { Problem } from '../schemas/index.js';
import { withTelemetry } from '../telemetry/http.js';

export interface AppOptions {
  ledger: Ledger;
  adminToken: string;
  /** Accept JWTs from this verifier too (OIDC). */
  jwt?: JwtVerifier;
  logger?: FastifyServerOptions['logger'];
  /** Count requests and serve /metrics (service-admins only) from this registry. */
  metrics?: Metrics;
  /** Where the built dashboard is (default: dist/web of this package). */
  dashboardDir?: string;
  /**
   * Proxies whose `X-Forwarded-For` is believed (addresses or CIDR ranges): the client address
   * that failed authentications are counted by is then the one they forwarded.
   */
  trustedProxies?: readonly string[];
  /** HTTP timeouts (see constants.ts for the defaults). */
  timeouts?: { headersMs?: number; requestMs?: number; idleMs?: number };
  /** Watch streams one principal may hold open in this process. */
  watchersPerPrincipalMax?: number;
  /** Addresses webhook targets may have though private or loopback (default: none). */
  webhookAllow?: AllowList;
}

/** Built by `npm run build` (web/ → dist/web); the same path from src/api and dist/api. */
export const defaultDashboardDir = fileURLToPath(new URL('../../dist/web/', import.meta.url));

// The dashboard holds a token: it runs only its own scripts, talks only to this server and
// is never framed. uPlot sizes its chart with inline styles, hence style-src 'unsafe-inline'.
const dashboardHeaders = {
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

export { apiVersion };

export async function buildApp(options: AppOptions): Promise<FastifyInstance> {
  const timeouts = {
    headersMs: options.timeouts?.headersMs ?? headersTimeoutMsDefault,
    requestMs: options.timeouts?.requestMs ?? requestTimeoutMsDefault,
    idleMs: options.timeouts?.idleMs ?? idleTimeoutMsDefault,
  };
  const app = withTelemetry(Fastify({
    logger: options.logger ?? false,
    bodyLimit: bodyBytesMax,
    // A client that trickles its headers or body is cut off, and so is an idle connection:
    // otherwise a few hundred slow clients hold the server's sockets for minutes. Node checks
    // these every `connectionsCheckingInterval`, so a second keeps them close to their values.
    http: {
      headersTimeout: Math.min(timeouts.headersMs, timeouts.requestMs),
      requestTimeout: timeouts.requestMs,
      connectionsCheckingInterval: 1000,
    },
    requestTimeout: timeouts.requestMs,
    keepAliveTimeout: timeouts.idleMs,
    trustProxy: options.trustedProxies && options.trustedProxies.length > 0 ? [...options.trustedProxies] : false,
    onProtoPoisoning: 'error',
    // The router's own refusals (a malformed percent-encoding, an over-long path parameter)
    // never reach the error handler: answer them as problems here.
    frameworkErrors: (error, request, reply) => {
      const detail =
        error.code === 'FST_ERR_MAX_PARAM_LENGTH'
          ? 'a path parameter is longer than any id'
          : 'the URL is not valid (check its percent-encoding)';
      void sendProblem(reply, request, new AllotError('invalid-request', detail, { errors: [{ field: 'url', message: detail }] }));
    },
    onConstructorPoisoning: 'error',
    ajv: {
      // Refuse, never silently drop or convert: unknown fields and wrong types are a 400.
      customOptions: { removeAdditional: false, coerceTypes: false, allErrors: true, verbose: true },
    },
    schemaController: { compilersFactory: sharedCompilers },
  })).withTypeProvider<TypeBoxTypeProvider>();

  installProblemHandlers(app);
  const mountMethodNotAllowed = installMethodNotAllowed(app);
  // A query parameter whose percent-encoding is not UTF-8 is refused, never taken literally
  // or repaired: `?resourceId=%ED%A0%80` (a lone surrogate) names no id, so it gets a 400.
  app.addHook('onRequest', async (request) => {
    const query = request.url.indexOf('?');
    if (query < 0) return;
    for (const pair of request.url.slice(query + 1).split('&')) {
      const [name = '', value = ''] = pair.split('=', 2);
      for (const part of [name, value]) {
        try {
          decodeURIComponent(part.replace(/\+/g, ' '));
        } catch {
          const field = safeDecode(name) ?? 'query';
          throw new AllotError('invalid-request', `${field}: is not percent-encoded UTF-8`, {
            errors: [{ field, message: 'is not percent-encoded UTF-8' }],
          });
        }
      }
    }
  });
  // Only JSON bodies: without this, Fastify would read text/plain as a string and answer a
  // schema error (400) where the truth is an unsupported media type (415).
  app.removeContentTypeParser('text/plain');
  installJsonParser(app);
  app.addSchema(Problem);
  await app.register(swagger, documentOptions);
  await app.register(swaggerUi, { routePrefix: '/docs' });

  installHealth(app, options.ledger);
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  await serveDashboard(app, options.dashboardDir ?? defaultDashboardDir);

  // One budget of failed authentications per address, whichever API they were sent to.
  const failures = new FailureCounter(options.adminToken);
  const authenticator = new Authenticator(options.ledger, options.adminToken, options.jwt);
  app.addHook('onClose', async () => authenticator.close());
  const auth = { authenticator, failures, clock: options.ledger.clock };
  const api: Api = {
    ledger: options.ledger,
    watchers: new Watchers(options.ledger, options.watchersPerPrincipalMax ?? watchersPerPrincipalMaxDefault),
    webhookAllow: options.webhookAllow ?? noneAllowed,
  };
  app.addHook('preClose', async () => api.watchers.stop());
  app.addHook('onClose', async () => api.watchers.close());
  await app.register(async (v1) => {
    installAuth(v1, auth);
    mountTable(v1, api);
  });
  const metrics = options.metrics;
  if (metrics) {
    installRequestMetrics(app, metrics);
    await app.register(async (scope) => {
      installAuth(scope, auth);
      scope.get('/metrics', { config: { action: 'administer' }, schema: { hide: true } }, async (_request, reply) =>
        reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()),
      );
    });
  }
  // The identity service's quota and allocation API (see compat/identity.ts).
  await app.register(identityCompatRoutes, { ledger: options.ledger, ...auth });
  mountMethodNotAllowed();
  return app;
}

/** Mounts the route table (routes/table.ts) on the authenticated scope. */
function mountTable(v1: FastifyInstance, api: Api): void {
  for (const row of table) {
    const { method, path, action, endpoint } = row;
    v1.route({
      method,
      url: path,
      config: { action },
      schema: schemaOf(row),
      ...(endpoint.bodyLimit === undefined ? {} : { bodyLimit: endpoint.bodyLimit }),
      ...(endpoint.preValidation === undefined ? {} : { preValidation: endpoint.preValidation }),
      // `Cache-Control: no-cache` asks for the primary's answer: no read goes to a replica.
      handler: (request, reply) =>
        freshReads.run(/\bno-cache\b/i.test(request.headers['cache-control'] ?? ''), () => endpoint.handler(request as never, reply as never, api)),
    });
  }
}

/** Whether each app is draining: its `/readyz` answers 503 from `drain(app)` or its close on. */
const drainingApps = new WeakSet<FastifyInstance>();

/**
 * Starts draining: `/readyz` answers 503 so a load balancer sends no new requests, while the
 * server still answers every request that reaches it. `allot serve` drains on SIGTERM for
 * `--drain-ms` before closing.
 */
export function drain(app: FastifyInstance): void {
  drainingApps.add(app);
}

/**
 * `/healthz`: the process is alive (200, no database needed). `/readyz`: it should get traffic —
 * the database answers, the schema is current, and it is not draining or closing; else 503.
 */
function installHealth(app: FastifyInstance, ledger: Ledger): void {
  app.addHook('preClose', async () => drain(app));
  app.get('/healthz', { schema: { hide: true } }, async () => ({ status: 'ok' }));
  app.get('/readyz', { schema: { hide: true } }, async (request, reply) => {
    const { ready, detail } = drainingApps.has(app)
      ? { ready: false, detail: 'the server is shutting down' }
      : await ledger.readiness();
    if (ready) return { status: 'ready' };
    // Sent, not thrown: a probe's 503 is an answer, not a failure for the error handler to log.
    return sendProblem(reply, request, new AllotError('service-unavailable', detail));
  });
}

function safeDecode(text: string): string | undefined {
  try {
    return decodeURIComponent(text.replace(/\+/g, ' '));
  } catch {
    return undefined;
  }
}

/**
 * The dashboard's files: `/` (and `/index.html`) read on each request and revalidated, and
 * `/assets/*`, whose names carry a content hash, cached for good. Assets are looked up per
 * request, so a rebuild (`npm run build`) is served without a restart; nothing outside
 * assets/ is served, dotfiles never, and a path the file server refuses is a plain 404.
 */
async function serveDashboard(app: FastifyInstance, root: string): Promise<void> {
  const index = join(root, 'index.html');
  const notBuilt = (request: FastifyRequest, reply: FastifyReply) =>
    sendProblem(reply, request, new AllotError('service-unavailable', 'the dashboard is not built: run `npm run build`'));
  if (!existsSync(index)) {
    app.get('/', { schema: { hide: true } }, async (request, reply) => notBuilt(request, reply));
    return;
  }
  const sendIndex = async (request: FastifyRequest, reply: FastifyReply) => {
    // Gone for a moment while `npm run build` rewrites it: a 503, not an internal error.
    const html = await readFile(index).catch(() => undefined);
    if (html === undefined) return notBuilt(request, reply);
    return reply
      .headers({ ...dashboardHeaders, 'cache-control': 'no-cache' })
      .type('text/html; charset=utf-8')
      .send(html);
  };
  app.get('/', { schema: { hide: true } }, sendIndex);
  app.get('/index.html', { schema: { hide: true } }, sendIndex);
  await app.register(async (assets) => {
    assets.setErrorHandler((error: FastifyError, request, reply) => {
      if ((error.statusCode ?? 500) >= 500) request.log.error({ err: error }, 'dashboard file failed');
      return sendProblem(reply, request, new AllotError('not-found', `no dashboard file ${request.url}`));
    });
    await assets.register(fastifyStatic, {
      root: join(root, 'assets'),
      prefix: '/assets/',
      dotfiles: 'ignore',
      cacheControl: false,
      setHeaders: (response) => {
        for (const [name, value] of Object.entries(dashboardHeaders)) response.setHeader(name, value);
        response.setHeader('cache-control', 'public, max-age=31536000, immutable');
      },
    });
  });
}
