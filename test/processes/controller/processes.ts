/**
 * Child processes for the controller test: the example host service (`npx tsx
 * examples/instances/server.ts`) and `allot serve` / `allot controller` (the built command,
 * see test/support/cli.ts). Each runs in its own process group, so stopping it reaches every
 * process it started (npx → tsx → node), and a stop can be a crash (SIGKILL).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { cliPath } from '../../support/cli.js';

const root = fileURLToPath(new URL('../../..', import.meta.url));

export interface RunningProcess {
  child: ChildProcess;
  pid: number;
  /** The first capture group of the ready line (a URL), or the whole line. */
  ready: string;
  output(): string;
  alive(): boolean;
  /** Resolves with the exit code (null when killed by a signal) once the process has exited. */
  exited: Promise<number | null>;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

export const groupAlive = (pid: number) => {
  try {
    process.kill(-pid, 0);
    return true;
  } catch {
    return false;
  }
};

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function stopGroup(pid: number, signal: NodeJS.Signals) {
  if (!groupAlive(pid)) return;
  try {
    process.kill(-pid, signal);
  } catch {
    return;
  }
  const deadline = Date.now() + 5_000;
  while (groupAlive(pid) && Date.now() < deadline) await sleep(25);
  if (groupAlive(pid)) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // gone in between
    }
    while (groupAlive(pid)) await sleep(25);
  }
}

/** Starts a command in its own process group and waits for a line of stdout matching `ready`. */
export async function startProcess(
  label: string,
  command: string,
  args: string[],
  env: Record<string, string>,
  ready: RegExp,
): Promise<RunningProcess> {
  const child = spawn(command, args, {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const pid = child.pid!;
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let stdout = '';
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const handle = (line: string): RunningProcess => ({
    child,
    pid,
    ready: line,
    output: () => `${stdout}\n${stderr}`,
    alive: () => groupAlive(pid),
    exited,
    stop: (signal = 'SIGTERM') => stopGroup(pid, signal),
  });
  try {
    const line = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${label} did not start: ${stdout}\n${stderr}`)), 30_000);
      child.stdout!.on('data', (chunk: Buffer) => {
        stdout += chunk.toString();
        const match = ready.exec(stdout);
        if (match) {
          clearTimeout(timer);
          resolve(match[1] ?? match[0]);
        }
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`${label} exited with ${code ?? signal}: ${stdout}\n${stderr}`));
      });
    });
    return handle(line);
  } catch (error) {
    await stopGroup(pid, 'SIGKILL');
    throw error;
  }
}

/** The example host service of one region, on `db`, at `port` (0: a free one). */
export function startHost(region: string, db: string, token: string, port = 0): Promise<RunningProcess> {
  return startProcess(
    `instances host ${region}`,
    'npx',
    ['tsx', 'examples/instances/server.ts', '--port', String(port), '--db', db, '--region', region],
    { ALLOT_ADMIN_TOKEN: token },
    new RegExp(`instances \\(${region}\\) listening on (http://\\S+)`),
  );
}

/** `allot serve` with extra arguments; ready when it prints its URL. */
export function startAllotServe(db: string, adminToken: string, extraArgs: string[] = []): Promise<RunningProcess> {
  return startProcess(
    'allot serve',
    process.execPath,
    [cliPath, 'serve', '--port', '0', '--db', db, ...extraArgs],
    { ALLOT_ADMIN_TOKEN: adminToken, ALLOT_LOG_LEVEL: 'warn', ALLOT_DB: '' },
    /listening on (http:\/\/\S+)/,
  );
}

/**
 * `allot controller --region R --interval ms [extra…]` running until stopped; `ready` is the
 * URL of its metrics port when it serves one (`--metrics-port`), else its running line.
 */
export function startAllotController(db: string, region: string, intervalMs: number, extraArgs: string[] = []): Promise<RunningProcess> {
  return startProcess(
    `allot controller ${region}`,
    process.execPath,
    [cliPath, 'controller', '--region', region, '--interval', String(intervalMs), '--db', db, ...extraArgs],
    { ALLOT_DB: '' },
    new RegExp(`allot controller of region ${region} running \\([^)]*\\)(?:; /metrics and /healthz on (http://\\S+))?\\n`),
  );
}

/** An HTTP answer, its body as text and, where it parses, as JSON. */
export interface Answer {
  status: number;
  json: any;
  text: string;
  type: string | null;
}

/** Sends a request to `base` + `path`, with a bearer token and a JSON body if given. */
export async function request(base: string, method: string, path: string, token?: string, body?: unknown): Promise<Answer> {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: {
      ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: response.status, json, text, type: response.headers.get('content-type') };
}
