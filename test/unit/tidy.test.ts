// Goal: keep the habits the code relies on, by code rather than by review: no stray console
// output or wall-clock reads in the sources, no leftover FIXMEs, and every error code both
// implemented and documented. Method: read the source files and docs/api.md (the errors table).
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { errorCodes } from '../../src/domain/errors.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sourceFiles(path) : path.endsWith('.ts') ? [path] : [];
  });
}

const sources = sourceFiles(join(root, 'src')).map((path) => ({
  path: relative(root, path),
  text: readFileSync(path, 'utf8'),
}));

describe('tidy', () => {
  it.each([
    ['console output (use the logger, or stdout in the CLI)', /\bconsole\.(log|error|warn|info|debug)\b/, []],
    ['wall-clock reads outside the clock module', /\bDate\.now\(\)/, [join('src', 'domain', 'clock.ts')]],
    ['leftover markers', /\b(FIXME|XXX|TODO)\b/, []],
  ])('sources have no %s', (_what, pattern, allowed) => {
    const offenders = sources
      .filter((file) => !allowed.includes(file.path))
      .filter((file) => pattern.test(file.text))
      .map((file) => file.path);
    expect(offenders).toEqual([]);
  });

  it('runs SQL on the ledger\'s tables only inside src/ledger (others ask the ledger)', () => {
    // The mixin (src/limits) keeps its own tables in the host's database; the store opens them all.
    const owners = ['src/ledger/', 'src/store/', 'src/limits/'].map((prefix) => prefix.split('/').join(sep));
    const offenders = sources
      .filter((file) => !owners.some((prefix) => file.path.startsWith(prefix)))
      .filter(
        (file) =>
          /\bledger\.store\b|\.transaction\(\s*(async\s*)?\(?tx\b/.test(file.text) ||
          // A value (not a type) from the ledger's own SQL modules: idempotency keys, say.
          /^import \{[^}]*\b(?!type\b)[a-z]\w*[^}]*\} from '[./]+\/ledger\/idempotency\//m.test(file.text.replace(/^import type .*$/gm, '')),
      )
      .map((file) => file.path);
    expect(offenders).toEqual([]);
  });

  it('documents every error code in docs/api.md, and documents no code that does not exist', () => {
    const doc = readFileSync(join(root, 'docs', 'api.md'), 'utf8');
    // The example host's own problem type (examples/instances) is not an allot error code.
    const hostTypes = new Set(['limit-exceeded']);
    const documented = new Set(
      [...doc.matchAll(/\/problems\/([a-z-]+)/g)].map((m) => m[1]).filter((code) => !hostTypes.has(code!)),
    );
    expect([...documented].sort()).toEqual(Object.keys(errorCodes).sort());
  });
});
