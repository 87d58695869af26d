// Goal: hold the shape of the code by code rather than by review. (1) Folders depend on one
// another only as the table below allows, and the table has no cycle: domain imports nothing of
// ours, store only domain, and so on up to the CLI. (2) No file grows past 400 lines and no
// function past 70; today's bigger ones are listed by name, may only shrink, and must leave the
// list once they are under the limit.
// Method: parse every source file with the TypeScript compiler. Imports: every relative module
// specifier (import and export declarations, `import()`, `import('…').Type`) is resolved to the
// top-level folder of src/ it lands in (`root` is src/index.ts). Lengths: a file's lines; and
// for every function-like node (declarations, methods, accessors, constructors, arrow functions
// and function expressions, wherever they sit) the lines from its first token to its last. A
// nested function counts inside its outer one, and is named on its own only if it alone is too
// long. Web sources (web/src) are held to the file limit only.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, posix, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const maxFileLines = 400;
const maxFunctionLines = 70;

/**
 * Today's files and functions over the limits, each with its length when it was listed. An
 * entry may stay until the file or function is split, but not grow; once it is under the limit
 * the test asks for its entry to be removed. Functions are named as the failure messages name
 * them: `Class.method`, `object.method`, a variable's name, or a callback by its call (with its
 * first argument), after the names of the functions it sits in, joined with ' > '.
 */
const oversized: readonly Oversized[] = [
  // Files
  { path: 'src/cli/main.ts', lines: 505 },
  { path: 'src/ledger/engine/engine.ts', lines: 447 },
  { path: 'src/ledger/engine/load.ts', lines: 439 },
  // Functions
  { path: 'src/api/app.ts', function: 'buildApp', lines: 133 },
  { path: 'src/api/compat/identity.ts', function: 'identityCompatRoutes', lines: 107 },
  { path: 'src/api/watchers.ts', function: 'stream', lines: 92 },
  { path: 'src/ledger/catalog/decide.ts', function: 'deleteProject', lines: 72 },
  { path: 'src/ledger/engine/flush.ts', function: 'flush', lines: 175 },
  { path: 'src/ledger/engine/load.ts', function: 'firstQueries', lines: 129 },
  { path: 'src/ledger/limits/limits.ts', function: 'writeLimit', lines: 85 },
  { path: 'src/store/sqlite/store.ts', function: 'openConnection', lines: 114 },
];

/**
 * Top-level folders of src/ (`root`: files directly in src/, i.e. src/index.ts), each with the
 * folders it may import: today's imports, which point one way, and ledger → schemas, kept for the
 * ledger's record types to derive from the wire schemas. api imports controller only for its
 * metrics (controller/metrics.ts); limits (the mixin) builds on store, not on the ledger.
 * telemetry (spans and log set-up, over @opentelemetry/api) sits just above domain: store, ledger
 * and api make their spans through it, and the CLI starts its SDK.
 */
const mayImport = {
  domain: [],
  telemetry: ['domain'],
  schemas: ['domain'],
  store: ['telemetry', 'domain'],
  limits: ['store', 'domain'],
  ledger: ['schemas', 'store', 'telemetry', 'domain'],
  controller: ['ledger', 'domain'],
  // webhooks: deliveries read the ledger's journal and cursors; api checks targets with it.
  webhooks: ['ledger', 'domain'],
  api: ['controller', 'webhooks', 'ledger', 'schemas', 'telemetry', 'domain'],
  cli: ['api', 'controller', 'webhooks', 'ledger', 'store', 'telemetry', 'domain'],
  // allot/client: a caller's side of the HTTP API, with the error codes and a clock of its own.
  client: ['domain'],
  root: ['ledger', 'store', 'domain'],
} satisfies Record<string, readonly string[]>;

interface Oversized {
  /** From the repository's root, with forward slashes. */
  path: string;
  /** The function's name as this test names it; absent: the whole file. */
  function?: string;
  lines: number;
}

type Folder = keyof typeof mayImport;

const root = fileURLToPath(new URL('../..', import.meta.url));

function filesUnder(dir: string, pattern: RegExp): string[] {
  return readdirSync(dir)
    .sort()
    .flatMap((name) => {
      const path = join(dir, name);
      return statSync(path).isDirectory() ? filesUnder(path, pattern) : pattern.test(name) ? [path] : [];
    });
}

interface Source {
  /** From the repository's root, with forward slashes. */
  path: string;
  file: ts.SourceFile;
  lines: number;
}

function parse(absolute: string): Source {
  const path = relative(root, absolute).split(sep).join('/');
  const text = readFileSync(absolute, 'utf8');
  const kind = path.endsWith('.tsx') ? ts.ScriptKind.TSX : ts.ScriptKind.TS;
  const file = ts.createSourceFile(path, text, ts.ScriptTarget.Latest, true, kind);
  return { path, file, lines: text.split('\n').length - (text.endsWith('\n') ? 1 : 0) };
}

/** Generated from the OpenAPI document (test/client/generate.ts): held to no size. */
const isGenerated = (source: Source) => source.file.text.startsWith('// Generated by ');

const sources = filesUnder(join(root, 'src'), /\.ts$/).map(parse);
const webSources = filesUnder(join(root, 'web', 'src'), /\.tsx?$/).map(parse);

/** The top-level folder of src/ a path (from the root, with `/`) is in; null outside src/. */
function folderOf(path: string): string | null {
  const parts = path.split('/');
  if (parts[0] !== 'src') return null;
  return parts.length === 2 ? 'root' : parts[1]!;
}

/** Every relative module specifier a file names, with where it appears. */
function relativeImports(file: ts.SourceFile): { specifier: string; line: number }[] {
  const found: { specifier: string; line: number }[] = [];
  const add = (node: ts.Node | undefined) => {
    if (node && ts.isStringLiteralLike(node) && node.text.startsWith('.')) {
      found.push({ specifier: node.text, line: file.getLineAndCharacterOfPosition(node.getStart(file)).line + 1 });
    }
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) add(node.moduleSpecifier);
    else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) {
      add(node.moduleReference.expression);
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) add(node.arguments[0]);
    else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) add(node.argument.literal);
    ts.forEachChild(node, visit);
  };
  visit(file);
  return found;
}

/** A cycle in the table, as the folders along it (first repeated at the end); null if none. */
function cycleIn(graph: Record<string, readonly string[]>): string[] | null {
  const state = new Map<string, 'open' | 'done'>();
  const path: string[] = [];
  const visit = (folder: string): string[] | null => {
    if (state.get(folder) === 'done') return null;
    if (state.get(folder) === 'open') return [...path.slice(path.indexOf(folder)), folder];
    state.set(folder, 'open');
    path.push(folder);
    for (const next of graph[folder] ?? []) {
      const cycle = visit(next);
      if (cycle) return cycle;
    }
    path.pop();
    state.set(folder, 'done');
    return null;
  };
  for (const folder of Object.keys(graph)) {
    const cycle = visit(folder);
    if (cycle) return cycle;
  }
  return null;
}

const lineOf = (file: ts.SourceFile, position: number) => file.getLineAndCharacterOfPosition(position).line + 1;

/** The name of a property, method or class member, as written. */
function memberName(name: ts.PropertyName | undefined, file: ts.SourceFile): string {
  if (!name) return '(anonymous)';
  return ts.isIdentifier(name) || ts.isPrivateIdentifier(name) || ts.isStringLiteralLike(name) || ts.isNumericLiteral(name)
    ? name.text
    : name.getText(file);
}

/** The name of what holds a member: its class, or the variable an object literal is assigned to. */
function ownerName(node: ts.Node, file: ts.SourceFile): string | null {
  const owner = node.parent;
  if (ts.isClassLike(owner)) return owner.name?.text ?? '(class)';
  if (ts.isObjectLiteralExpression(owner)) {
    const holder = owner.parent;
    if (ts.isVariableDeclaration(holder)) return holder.name.getText(file);
    if (ts.isPropertyAssignment(holder)) return memberName(holder.name, file);
    if (ts.isCallExpression(holder) || ts.isNewExpression(holder)) return callName(holder, owner, file);
    return null;
  }
  return null;
}

/** Source text on one line; `…` for more than `max` characters. */
function brief(node: ts.Node, file: ts.SourceFile, max = 60): string {
  const text = node.getText(file).replace(/\s*\n\s*/g, '');
  return text.length <= max ? text : '…';
}

/**
 * A call a function is passed to, by its callee and first argument: `app.get('/v1/…')`. A long
 * chain keeps its first call and its last name: `quota.command('set')….action(…)`.
 */
function callName(call: ts.CallExpression | ts.NewExpression, argument: ts.Node, file: ts.SourceFile): string {
  let callee = call.expression.getText(file).replace(/\s*\n\s*/g, '');
  if (callee.length > 60) {
    const first = /^[^(]*\([^)]*\)/.exec(callee)?.[0] ?? '';
    const last = ts.isPropertyAccessExpression(call.expression) ? call.expression.name.text : '';
    callee = first.length > 0 && first.length <= 60 ? `${first}….${last}` : `….${last}`;
  }
  const first = call.arguments?.[0];
  const label = first && first !== argument ? brief(first, file) : '…';
  return `${ts.isNewExpression(call) ? 'new ' : ''}${callee}(${label})`;
}

const qualified = (owner: string | null, name: string) => (owner ? `${owner}.${name}` : name);

/** A short name for a function-like node, without the functions it sits in. */
function functionName(node: ts.FunctionLikeDeclaration, file: ts.SourceFile): string {
  if (ts.isFunctionDeclaration(node)) return node.name?.text ?? 'default';
  if (ts.isConstructorDeclaration(node)) return qualified(ownerName(node, file), 'constructor');
  if (ts.isMethodDeclaration(node) || ts.isGetAccessorDeclaration(node) || ts.isSetAccessorDeclaration(node)) {
    return qualified(ownerName(node, file), memberName(node.name, file));
  }
  // An arrow function or function expression: named by where it goes.
  if (ts.isFunctionExpression(node) && node.name) return node.name.text;
  let place: ts.Node = node.parent;
  while (ts.isParenthesizedExpression(place) || ts.isAsExpression(place) || ts.isSatisfiesExpression(place)) place = place.parent;
  if (ts.isVariableDeclaration(place)) return place.name.getText(file);
  if (ts.isPropertyAssignment(place)) return qualified(ownerName(place, file), memberName(place.name, file));
  if (ts.isPropertyDeclaration(place)) return qualified(ownerName(place, file), memberName(place.name, file));
  if (ts.isBinaryExpression(place)) return brief(place.left, file);
  if (ts.isCallExpression(place) || ts.isNewExpression(place)) return callName(place, node, file);
  return `(anonymous, line ${lineOf(file, node.getStart(file))})`;
}

interface Measured {
  path: string;
  function: string;
  lines: number;
}

/**
 * A function whose body is only an object of methods, `(core) => ({ a() {…}, b() {…} })`: a
 * concern's methods bound to the ledger's core (src/ledger/<concern>/index.ts). It is a module of
 * methods, not one function: its methods are measured, each on its own.
 */
function isFactoryOfMethods(node: ts.Node): boolean {
  if (!ts.isArrowFunction(node)) return false;
  let body: ts.Node = node.body;
  while (ts.isParenthesizedExpression(body)) body = body.expression;
  return ts.isObjectLiteralExpression(body) && body.properties.every((p) => ts.isMethodDeclaration(p));
}

/** Every function-like node with a body, named after the functions it sits in. */
function functionsOf(source: Source): Measured[] {
  const { file } = source;
  const found: Measured[] = [];
  const seen = new Map<string, number>();
  const visit = (node: ts.Node, outer: string[]): void => {
    let inside = outer;
    if (ts.isFunctionLike(node) && 'body' in node && node.body && !isFactoryOfMethods(node)) {
      let name = [...outer, functionName(node as ts.FunctionLikeDeclaration, file)].join(' > ');
      const count = (seen.get(name) ?? 0) + 1;
      seen.set(name, count);
      if (count > 1) name = `${name} #${count}`;
      const lines = lineOf(file, node.getEnd()) - lineOf(file, node.getStart(file)) + 1;
      found.push({ path: source.path, function: name, lines });
      inside = [name];
    }
    ts.forEachChild(node, (child) => visit(child, inside));
  };
  visit(file, []);
  return found;
}

const keyOf = (entry: { path: string; function?: string }) =>
  entry.function === undefined ? entry.path : `${entry.path}: ${entry.function}`;

describe('shape', () => {
  describe('folder imports', () => {
    it('the table lists every top-level folder of src/ and nothing else', () => {
      const folders = new Set(sources.map((source) => folderOf(source.path)!));
      expect([...folders].sort()).toEqual(Object.keys(mayImport).sort());
    });

    it('the table has no cycle between folders', () => {
      const cycle = cycleIn(mayImport);
      expect(cycle === null ? 'none' : `a cycle: ${cycle.join(' → ')}`).toBe('none');
    });

    it('every relative import in src/ goes to a folder the table allows', () => {
      const offenders: string[] = [];
      for (const source of sources) {
        const from = folderOf(source.path)! as Folder;
        const allowed: readonly string[] = mayImport[from] ?? [];
        for (const { specifier, line } of relativeImports(source.file)) {
          const target = posix.normalize(posix.join(posix.dirname(source.path), specifier));
          const to = folderOf(target) ?? `(outside src: ${target})`;
          if (to !== from && !allowed.includes(to)) {
            offenders.push(`${source.path}:${line} imports '${specifier}' (${from} → ${to}, not in the table)`);
          }
        }
      }
      expect(offenders).toEqual([]);
    });
  });

  describe('sizes', () => {
    const measuredFiles = [...sources, ...webSources]
      .filter((source) => !isGenerated(source))
      .map((source) => ({ path: source.path, lines: source.lines }));
    const measuredFunctions = sources.filter((source) => !isGenerated(source)).flatMap(functionsOf);
    const overFiles = measuredFiles.filter((file) => file.lines > maxFileLines);
    const overFunctions = measuredFunctions.filter((fn) => fn.lines > maxFunctionLines);
    const listed = new Map(oversized.map((entry) => [keyOf(entry), entry]));

    it(`no file over ${maxFileLines} lines and no function over ${maxFunctionLines} lines outside the list`, () => {
      const offenders = [
        ...overFiles
          .filter((file) => !listed.has(keyOf(file)))
          .map((file) => `${file.path}: ${file.lines} lines, over ${maxFileLines}: split it`),
        ...overFunctions
          .filter((fn) => !listed.has(keyOf(fn)))
          .map((fn) => `${keyOf(fn)}: ${fn.lines} lines, over ${maxFunctionLines}: split it`),
      ];
      expect(offenders).toEqual([]);
    });

    it('a listed file or function has not grown', () => {
      const grown = [...overFiles, ...overFunctions]
        .filter((measured) => listed.has(keyOf(measured)) && measured.lines > listed.get(keyOf(measured))!.lines)
        .map((measured) => `${keyOf(measured)}: grew from ${listed.get(keyOf(measured))!.lines} to ${measured.lines} lines: split it, do not raise its count`);
      expect(grown).toEqual([]);
    });

    it('every listed file or function is still over its limit', () => {
      const now = new Map([...measuredFiles, ...measuredFunctions].map((measured) => [keyOf(measured), measured.lines]));
      const stale = oversized
        .filter((entry) => (now.get(keyOf(entry)) ?? 0) <= (entry.function === undefined ? maxFileLines : maxFunctionLines))
        .map((entry) =>
          now.has(keyOf(entry))
            ? `${keyOf(entry)}: ${now.get(keyOf(entry))} lines, no longer over the limit: remove it from the list`
            : `${keyOf(entry)}: no such file or function any more: remove it from the list`,
        );
      expect(stale).toEqual([]);
    });
  });
});
