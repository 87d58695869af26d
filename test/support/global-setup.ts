/**
 * Before any test: the tests that run `allot` as a process run the built command, so build it
 * when a source is newer than the build (`npm test` has just built it, and this returns at
 * once; a local `npx vitest run` after an edit would otherwise test stale code).
 * This runs in Vitest's main process, which must stay free to answer its workers: the build
 * runs as a child process that is waited for, never with a synchronous call.
 */
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { cliPath, root } from './cli.js';

function newestMs(dir: string): number {
  let newest = 0;
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    const stat = statSync(path);
    newest = Math.max(newest, stat.isDirectory() ? newestMs(path) : stat.mtimeMs);
  }
  return newest;
}

export default async function setup(): Promise<void> {
  const built = join(root, cliPath);
  if (existsSync(built) && statSync(built).mtimeMs >= newestMs(join(root, 'src'))) return;
  process.stdout.write('global-setup: src/ is newer than dist/: building it (tsc -p tsconfig.build.json)\n');
  try {
    await promisify(execFile)(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], {
      cwd: root,
      maxBuffer: 64 * 1024 * 1024,
    });
  } catch (error) {
    const { stdout = '', stderr = '' } = error as { stdout?: string; stderr?: string };
    throw new Error(`tsc -p tsconfig.build.json failed:\n${stdout}${stderr}`);
  }
}
