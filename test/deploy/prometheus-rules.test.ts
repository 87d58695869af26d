// Goal: the alerting rules shipped in deploy/prometheus/allot-rules.yml are rules Prometheus
// loads, behave as their unit tests say (deploy/prometheus/allot-rules.test.yml: the 80, 95 and
// 100 % quota thresholds, no flapping around one, nothing for an unlimited kind, the operations
// alerts), and read only metrics allot registers (a renamed metric fails here, not as an alert
// that silently never fires). Method: promtool, from Debian's prometheus package, checks the
// rules and runs their tests; every rule's expression is reduced to its metric names (strings,
// label matchers, ranges, grouping clauses, functions and keywords removed), and each must be a
// series this file records, Prometheus's own ALERTS, or a name registered in src/ (a quoted
// string there; a histogram's _bucket, _sum and _count by its base name). Nothing is started.
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const root = fileURLToPath(new URL('../..', import.meta.url));
const rulesPath = 'deploy/prometheus/allot-rules.yml';
const testsPath = 'deploy/prometheus/allot-rules.test.yml';

interface Rule {
  alert?: string;
  record?: string;
  expr: string;
}

const rules: Rule[] = (parse(readFileSync(join(root, rulesPath), 'utf8')) as { groups: { name: string; rules: Rule[] }[] }).groups.flatMap(
  (group) => group.rules,
);

/** Runs promtool; a missing promtool fails (never skips) the test with how to install it. */
async function promtool(...args: string[]): Promise<{ status: number; output: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)('promtool', args, { cwd: root });
    return { status: 0, output: stdout + stderr };
  } catch (error) {
    const failed = error as { code?: number | string; stdout?: string; stderr?: string };
    if (failed.code === 'ENOENT') {
      throw new Error("promtool is not installed: install Debian's prometheus package (apt-get install --no-install-recommends prometheus), as .ci/run does");
    }
    return { status: typeof failed.code === 'number' ? failed.code : -1, output: `${failed.stdout ?? ''}${failed.stderr ?? ''}` };
  }
}

const keywords = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'and', 'or', 'unless', 'offset', 'inf', 'nan']);

/** The metric names a PromQL expression reads. */
function metricNamesOf(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names: string[] = [];
  for (const match of bare.matchAll(/(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?/g)) {
    if (match[2] !== undefined || keywords.has(match[1]!.toLowerCase())) continue;
    names.push(match[1]!);
  }
  return names;
}

/** Every TypeScript source of src/, concatenated. */
function sources(): string {
  const dir = join(root, 'src');
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((path) => path.endsWith('.ts'))
    .map((path) => readFileSync(join(dir, path), 'utf8'))
    .join('\n');
}

/**
 * Whether src/ registers the metric a series name belongs to: its name as a quoted string (not
 * in backquotes, which are comments' code spans here).
 */
function registered(source: string, name: string): boolean {
  const literal = (metric: string) => source.includes(`'${metric}'`) || source.includes(`"${metric}"`);
  if (literal(name)) return true;
  const histogram = /^(.*)_(bucket|sum|count)$/.exec(name);
  return histogram !== null && new RegExp(`new Histogram\\(\\{\\s*name: '${histogram[1]}'`).test(source);
}

describe('metricNamesOf', () => {
  it('finds the metric names of an expression and nothing else', () => {
    expect(metricNamesOf('histogram_quantile(0.9, sum by (instance, le) (rate(allot_x_bucket{a="b{c}"}[10m]))) > 60')).toEqual(['allot_x_bucket']);
    expect(metricNamesOf('a:ratio >= 0.95 or (a:ratio >= 0.9 and on (o, k) ALERTS{alertname="X"})')).toEqual(['a:ratio', 'a:ratio', 'ALERTS']);
    expect(metricNamesOf('max by (o) (a_used{o!="_other"}) / max by (o) (b_limit) >= 1')).toEqual(['a_used', 'b_limit']);
  });
});

describe(rulesPath, () => {
  it('is a rules file Prometheus loads (promtool check rules)', async () => {
    const { status, output } = await promtool('check', 'rules', rulesPath);
    expect(status, output).toBe(0);
    expect(output, output).toContain(`SUCCESS: ${rules.length} rules found`);
  });

  it(`passes its unit tests (promtool test rules ${testsPath})`, async () => {
    const { status, output } = await promtool('test', 'rules', testsPath);
    expect(status, output).toBe(0);
    expect(output, output).toContain('SUCCESS');
  });

  it('reads only metrics allot registers', () => {
    const recorded = new Set(rules.flatMap((rule) => (rule.record ? [rule.record] : [])));
    const source = sources();
    const read = new Set(rules.flatMap((rule) => metricNamesOf(rule.expr)));
    // Not vacuous: the names are found, the quota gauges and the webhook gauge among them.
    expect([...read]).toEqual(expect.arrayContaining(['allot_quota_used', 'allot_quota_limit', 'allot_region_host_up', 'allot_webhook_subscriptions_failing']));
    const unknown = [...read].filter((name) => !recorded.has(name) && name !== 'ALERTS' && !registered(source, name));
    // allot_webhook_subscriptions_failing is added with webhooks: until its gauge is in src/,
    // this names it.
    expect(unknown, `read by the rules but registered nowhere in src/: ${unknown.join(', ')}`).toEqual([]);
  });

  it('labels every alert with a severity and describes it', () => {
    const alerts = parse(readFileSync(join(root, rulesPath), 'utf8')).groups.flatMap((group: { rules: any[] }) => group.rules.filter((rule) => rule.alert));
    expect(alerts.length).toBeGreaterThan(0);
    for (const alert of alerts) {
      expect(['info', 'warning', 'critical'], alert.alert).toContain(alert.labels?.severity);
      expect(alert.annotations, alert.alert).toMatchObject({ summary: expect.any(String), description: expect.any(String) });
    }
  });
});
