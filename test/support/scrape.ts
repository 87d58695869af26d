/**
 * Reads a Prometheus text exposition (what /metrics answers): the metric families it declares
 * (`# TYPE` lines) and its samples, so tests look samples up by name and labels.
 */
import type { FastifyInstance } from 'fastify';
import { expect } from 'vitest';
import { auth } from '../api/harness.js';

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Scrape {
  /** Family name → type (counter, gauge, histogram, summary). */
  families: Map<string, string>;
  samples: Sample[];
  /** The value of the one sample of this name whose labels include `labels`; undefined if none. */
  value(name: string, labels?: Record<string, string>): number | undefined;
  /** Every sample of this name. */
  all(name: string): Sample[];
}

const unescape = (text: string) => text.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));

export function parseExposition(text: string): Scrape {
  const families = new Map<string, string>();
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) families.set(type[1]!, type[2]!);
    if (line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match) throw new Error(`not a sample line: ${line}`);
    const labels = Object.fromEntries([...(match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1]!, unescape(m[2]!)]));
    samples.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  const all = (name: string) => samples.filter((sample) => sample.name === name);
  const value = (name: string, labels: Record<string, string> = {}) => {
    const found = all(name).filter((sample) => Object.entries(labels).every(([key, v]) => sample.labels[key] === v));
    if (found.length > 1) throw new Error(`${name} ${JSON.stringify(labels)}: ${found.length} samples`);
    return found[0]?.value;
  };
  return { families, samples, value, all };
}

/** GET /metrics with the admin token, parsed. */
export async function scrape(app: FastifyInstance): Promise<Scrape> {
  const response = await app.inject({ method: 'GET', url: '/metrics', headers: auth });
  expect(response.statusCode, response.body.slice(0, 300)).toBe(200);
  return parseExposition(response.body);
}

/** The names a family's samples may have: a histogram's _bucket, _sum and _count, else its own. */
export function sampleNamesOf(family: string, type: string): string[] {
  if (type === 'histogram') return [`${family}_bucket`, `${family}_sum`, `${family}_count`];
  if (type === 'summary') return [family, `${family}_sum`, `${family}_count`];
  return [family];
}
