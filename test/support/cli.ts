/**
 * The `allot` command as a child process, for the tests that drive it: the built command
 * (`dist/cli/main.js`, kept fresh by global-setup.ts), started without tsx so it takes a
 * fraction of a second, and run asynchronously so the test worker's event loop keeps
 * answering vitest while it waits (a blocking spawnSync starved it under load).
 */
import { execFile, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const root = fileURLToPath(new URL('../..', import.meta.url));
export const cliPath = 'dist/cli/main.js';

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `allot ARGS…` to its end. ALLOT_DB is cleared so only `--db` names a database. */
export function allot(...args: string[]): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [cliPath, ...args],
      { cwd: root, encoding: 'utf8', env: { ...process.env, ALLOT_DB: '' }, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : null) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** Starts `allot ARGS…` without waiting for it (a server, a controller). */
export function spawnAllot(args: string[], options: SpawnOptions = {}): ChildProcess {
  return spawn(process.execPath, [cliPath, ...args], { cwd: root, ...options });
}
