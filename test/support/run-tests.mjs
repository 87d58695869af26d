// `npm test`: generate the compatibility client, build, type-check and run every test, with
// the steps that do not wait on each other side by side (on two cores this saves most of the
// type-check's half minute):
//
//   compat:client ──> typecheck ─────────────────┐
//   build ────────────┴──> vitest run [args…] ───┴──> exit 1 if any step failed
//
// The tests need the build (they run dist/cli/main.js and serve dist/web) and the generated
// client; the type-check needs only the client, and runs beside the tests. The steps are the
// package's own scripts (npm run …), so this file names no command of its own but Vitest.
// Each script's output is printed whole when it ends; Vitest's is streamed, and its closing
// line stays last unless a step failed, which is then named after it.
import { spawn } from 'node:child_process';

const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const children = new Set();

/** Runs `command args…`; resolves with its exit code, its output kept or streamed. */
function run(name, command, args, { stream = false } = {}) {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: stream ? 'inherit' : ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    const output = [];
    child.stdout?.on('data', (chunk) => output.push(chunk));
    child.stderr?.on('data', (chunk) => output.push(chunk));
    child.once('error', (error) => output.push(Buffer.from(`${error.message}\n`)));
    child.once('close', (code, signal) => {
      children.delete(child);
      const ok = code === 0;
      if (!stream) {
        const seconds = ((Date.now() - started) / 1000).toFixed(1);
        const text = Buffer.concat(output).toString().trim();
        process.stdout.write(`\n── ${name}: ${ok ? 'done' : `FAILED (${signal ?? `exit ${code}`})`} in ${seconds} s\n${text ? `${text}\n` : ''}`);
      }
      resolve(ok ? 0 : (code ?? 1));
    });
  });
}

const script = (name) => run(`npm run ${name}`, npm, ['run', '--silent', name]);

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    for (const child of children) child.kill(signal);
    process.exitCode = 1;
  });
}

const compat = script('compat:client');
const build = script('build');
const typecheck = compat.then((code) => (code === 0 ? script('typecheck') : code));
const [compatCode, buildCode] = await Promise.all([compat, build]);
const failed = [];
if (compatCode !== 0) failed.push('compat:client');
if (buildCode !== 0) failed.push('build');
if (failed.length === 0) {
  const vitest = await run('vitest run', process.execPath, ['node_modules/vitest/vitest.mjs', 'run', ...process.argv.slice(2)], { stream: true });
  if (vitest !== 0) failed.push('vitest run');
}
if ((await typecheck) !== 0 && compatCode === 0) failed.push('typecheck');
if (failed.length > 0) {
  process.stdout.write(`npm test: ${failed.join(', ')} failed\n`);
  process.exitCode = 1;
}
