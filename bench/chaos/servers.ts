/**
 * The `allot serve` processes under test, one slot each. A slot is up (its address is handed
 * to clients), down, or starting. The harness kills a slot's process with SIGKILL and starts
 * a new one on the same port or a new one; clients ask `pick()` for a live address on every
 * attempt, so they follow. An exit the harness did not cause is recorded as a crash.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Random } from './random.js';
import { sleep } from './random.js';

export interface ServerPoolOptions {
  /** The repository root: the servers run the built command (`dist/cli/main.js`) from there. */
  root: string;
  db: string;
  adminToken: string;
  log: (line: string) => void;
}

interface Slot {
  index: number;
  phase: 'down' | 'starting' | 'up';
  url: string | null;
  port: number;
  child: ChildProcess | null;
  stderrTail: string;
}

export interface Crash {
  server: number;
  pid: number | undefined;
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

const startTimeoutMs = 45_000;
const stderrTailMax = 8_000;

export class ServerPool {
  readonly slots: Slot[];
  readonly crashes: Crash[] = [];
  kills = 0;
  starts = 0;
  failedStarts = 0;
  private readonly children = new Set<ChildProcess>();

  constructor(
    count: number,
    private readonly options: ServerPoolOptions,
  ) {
    this.slots = Array.from({ length: count }, (_, index) => ({
      index,
      phase: 'down' as const,
      url: null,
      port: 0,
      child: null,
      stderrTail: '',
    }));
  }

  /** The addresses of the servers that are up now. */
  live(): string[] {
    return this.slots.flatMap((slot) => (slot.phase === 'up' && slot.url !== null ? [slot.url] : []));
  }

  allUp(): boolean {
    return this.slots.every((slot) => slot.phase === 'up');
  }

  /** A live address, preferring one other than `avoid` (the one that just failed). */
  pick(random: Random, avoid?: string): string | undefined {
    const live = this.live();
    if (live.length === 0) return undefined;
    const others = live.filter((url) => url !== avoid);
    return random.pick(others.length > 0 ? others : live);
  }

  /**
   * Starts the slot's server and waits until it listens. Tries `port` first (0: any free
   * one), then any port; retries until `deadline` (a start fails while the database is down).
   */
  async start(index: number, port: number, deadline: number): Promise<void> {
    const slot = this.slots[index]!;
    slot.phase = 'starting';
    let lastError: unknown;
    for (let attempt = 0; Date.now() < deadline; attempt += 1) {
      try {
        const { url, child } = await this.spawnOne(slot, attempt === 0 ? port : 0);
        slot.url = url;
        slot.port = Number(new URL(url).port);
        slot.child = child;
        slot.phase = 'up';
        this.starts += 1;
        return;
      } catch (error) {
        lastError = error;
        this.failedStarts += 1;
        await sleep(300);
      }
    }
    slot.phase = 'down';
    throw new Error(`server ${index} did not start: ${lastError instanceof Error ? lastError.message : String(lastError)}`);
  }

  /** SIGKILLs the slot's process and waits until it is gone. */
  async kill(index: number): Promise<void> {
    const slot = this.slots[index]!;
    const child = slot.child;
    slot.phase = 'down';
    slot.url = null;
    slot.child = null;
    if (child === null) return;
    this.kills += 1;
    await stopChild(child, 'SIGKILL', 5_000);
  }

  /** Stops every server with SIGTERM (SIGKILL after `timeoutMs`) and waits. */
  async stopAll(timeoutMs = 10_000): Promise<void> {
    const children = this.slots.flatMap((slot) => (slot.child ? [slot.child] : []));
    for (const slot of this.slots) {
      slot.phase = 'down';
      slot.url = null;
      slot.child = null;
    }
    await Promise.all(children.map((child) => stopChild(child, 'SIGTERM', timeoutMs)));
  }

  /** Last resort (the harness is failing or interrupted): SIGKILL every child still running. */
  killAllNow(): void {
    for (const slot of this.slots) {
      slot.phase = 'down';
      slot.url = null;
      slot.child = null;
    }
    for (const child of this.children) {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  }

  private spawnOne(slot: Slot, port: number): Promise<{ url: string; child: ChildProcess }> {
    const child = spawn(
      process.execPath,
      ['dist/cli/main.js', 'serve', '--port', String(port), '--db', this.options.db],
      {
        cwd: this.options.root,
        env: {
          ...process.env,
          ALLOT_ADMIN_TOKEN: this.options.adminToken,
          ALLOT_LOG_LEVEL: 'warn',
          ALLOT_DB: '',
          PORT: '',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    this.children.add(child);
    let stdout = '';
    child.stderr!.on('data', (chunk: Buffer) => {
      slot.stderrTail = (slot.stderrTail + chunk.toString()).slice(-stderrTailMax);
    });
    return new Promise((resolve, reject) => {
      let listening = false;
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`no "listening on" line within ${startTimeoutMs} ms`));
      }, startTimeoutMs);
      child.stdout!.on('data', (chunk: Buffer) => {
        if (listening) return;
        stdout += chunk.toString();
        const match = /listening on (http:\/\/\S+)/.exec(stdout);
        if (match) {
          listening = true;
          clearTimeout(timer);
          resolve({ url: match[1]!, child });
        }
      });
      child.once('exit', (code, signal) => {
        this.children.delete(child);
        clearTimeout(timer);
        if (!listening) {
          reject(new Error(`exited (${code ?? signal}) before listening: ${slot.stderrTail.slice(-600)}`));
          return;
        }
        // Still the slot's process: nobody here stopped it.
        if (slot.child === child) {
          this.crashes.push({ server: slot.index, pid: child.pid, code, signal, stderr: slot.stderrTail });
          this.options.log(`server ${slot.index} (pid ${child.pid}) exited by itself (${code ?? signal})`);
          slot.phase = 'down';
          slot.url = null;
          slot.child = null;
        }
      });
    });
  }
}

/** The error a crashed process printed last (`Error: …` at the start of a line), if any. */
export function crashCause(stderr: string): string {
  const lines = stderr.split('\n').filter((line) => /^\w*(Error|error)\b.*:/.test(line));
  const emitted = /Emitted 'error' event on (\w+) instance/.exec(stderr);
  const cause = lines[lines.length - 1]?.trim() ?? stderr.trim().split('\n').slice(-3).join(' | ');
  return `${cause}${emitted ? ` (unhandled 'error' event on a ${emitted[1]})` : ''}`;
}

function stopChild(child: ChildProcess, signal: NodeJS.Signals, timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill(signal);
  });
}
