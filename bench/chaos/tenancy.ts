/**
 * The books the load works on: four kinds (two with a default of 0 and small organization
 * quotas, one that relies on a small default, one unlimited), three organizations with two
 * projects each. Quotas are small, so many requests are denied.
 */
import { httpRequest } from './http.js';
import type { Random } from './random.js';

export interface KindSpec {
  name: string;
  default: number | null;
  format: 'decimal' | 'binary';
  /** Whether quota changes of the load touch it. */
  quota: boolean;
}

export const kinds: readonly KindSpec[] = [
  { name: 'gpus', default: 0, format: 'decimal', quota: true },
  { name: 'cpu', default: 0, format: 'decimal', quota: true },
  { name: 'ips', default: 8, format: 'decimal', quota: true },
  { name: 'disk', default: null, format: 'binary', quota: false },
];

export const kindDefaults = new Map(kinds.map((kind) => [kind.name, kind.default]));

export interface Organization {
  id: string;
  projects: string[];
}

export const organizations: readonly Organization[] = ['org-a', 'org-b', 'org-c'].map((id) => ({
  id,
  projects: ['web', 'batch'],
}));

/** Quotas are drawn from this range (and never below usage). */
export const quotaMin = 20;
export const quotaMax = 50;

export async function setUpBooks(url: string, token: string, random: Random): Promise<void> {
  const put = async (path: string, body: unknown, expected: number[]) => {
    const answer = await httpRequest(url, 'PUT', path, { token, body, timeoutMs: 15_000 });
    if (!expected.includes(answer.status)) {
      throw new Error(`setup: PUT ${path} answered ${answer.status}: ${JSON.stringify(answer.body)}`);
    }
  };
  for (const kind of kinds) {
    await put(
      `/v1/resource-kinds/${kind.name}`,
      { displayName: kind.name, default: kind.default, format: kind.format },
      [201, 200],
    );
  }
  for (const organization of organizations) {
    await put(`/v1/organizations/${organization.id}`, { displayName: organization.id }, [201, 200]);
    for (const project of organization.projects) {
      await put(`/v1/organizations/${organization.id}/projects/${project}`, {}, [201, 200]);
    }
    await put(
      `/v1/organizations/${organization.id}/quotas`,
      {
        quotas: [
          { kind: 'gpus', quantity: random.int(quotaMin, quotaMax) },
          { kind: 'cpu', quantity: random.int(quotaMin, quotaMax) },
        ],
      },
      [200],
    );
  }
}
