/**
 * Before any test: the tests that run `allot` as a process run the built command, so build it
 * when a source is newer than the build (`npm test` has just built it; a local
 * `npx vitest run` after an edit would otherwise test stale code).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
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

export default function setup(): void {
  const built = join(root, cliPath);
  if (existsSync(built) && statSync(built).mtimeMs >= newestMs(join(root, 'src'))) return;
  execFileSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], {
    cwd: root,
    stdio: 'inherit',
  });
}
