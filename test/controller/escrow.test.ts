// Goal: the escrow that splits a global bound among regions keeps its promise: the regions'
// tracker limits never add up to more than the bound — at every instant of a rebalance, even
// while hosts keep creating up to their current limits between the controller's read and its
// moves — every region keeps what it uses (unless usage already passes the bound), and unused
// headroom goes to the regions using it.
// Method: escrowTargets is checked on examples and with fast-check (random bounds and usages);
// rebalance runs against simulated hosts whose usage grows up to their current limit at random
// moments between the controller's calls, and every state the hosts pass through is checked.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { escrowTargets, rebalance, type RegionShare } from '../../src/controller/escrow.js';

const sum = (values: Iterable<number>) => [...values].reduce((a, b) => a + b, 0);

describe('escrowTargets', () => {
  it('gives each region its use plus headroom in proportion to use + 1, remainder to the busiest', () => {
    const targets = escrowTargets(100, [
      { region: 'eu', limit: 50, used: 30 },
      { region: 'us', limit: 50, used: 9 },
    ]);
    // headroom 61, weights 31 and 10: floor(61·31/41) = 46, floor(61·10/41) = 14, remainder 1 → eu.
    expect(Object.fromEntries(targets)).toEqual({ eu: 30 + 46 + 1, us: 9 + 14 });
  });

  it('when use already reaches the bound, shares the bound by use and never above use', () => {
    const targets = escrowTargets(10, [
      { region: 'a', limit: 8, used: 8 },
      { region: 'b', limit: 8, used: 7 },
    ]);
    expect(Object.fromEntries(targets)).toEqual({ a: 5, b: 4 });
  });

  it('for any bound and usage: the targets add up to at most the bound, each at least its use while use fits', () => {
    fc.assert(
      fc.property(
        fc.nat(10_000),
        fc.array(fc.record({ limit: fc.nat(5000), used: fc.nat(5000) }), { minLength: 1, maxLength: 6 }),
        (bound, rows) => {
          const regions = rows.map((row, i) => ({ region: `r${i}`, ...row }));
          const targets = escrowTargets(bound, regions);
          const used = sum(regions.map((r) => r.used));
          expect(sum(targets.values())).toBeLessThanOrEqual(Math.max(bound, 0));
          for (const r of regions) {
            const target = targets.get(r.region)!;
            expect(target).toBeGreaterThanOrEqual(0);
            if (used < bound) expect(target).toBeGreaterThanOrEqual(r.used);
            else expect(target).toBeLessThanOrEqual(r.used);
          }
          if (used < bound) expect(sum(targets.values())).toBe(bound);
        },
      ),
    );
  });
});

describe('rebalance against hosts that keep creating', () => {
  it('never lets the regions’ limits, or their limits and use, add up to more than the bound', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 500 }),
        fc.array(fc.nat(300), { minLength: 2, maxLength: 4 }),
        fc.array(fc.nat(), { minLength: 8, maxLength: 8 }),
        async (bound, usedRows, seeds) => {
          // Start from a valid state: limits adding up to at most the bound, use within them.
          const n = usedRows.length;
          const start = usedRows.map((u, i) => {
            const limit = Math.floor(bound / n);
            return { region: `r${i}`, limit, used: Math.min(u, limit) };
          });
          const hosts = new Map(start.map((r) => [r.region, { ...r }]));
          let step = 0;
          const check = () => {
            const states = [...hosts.values()];
            expect(sum(states.map((s) => s.limit))).toBeLessThanOrEqual(bound);
            // What the hosts may hold: their limit, or more only if it was cut below use.
            for (const s of states) expect(s.used).toBeLessThanOrEqual(Math.max(s.limit, s.used));
            expect(sum(states.map((s) => s.used))).toBeLessThanOrEqual(bound);
          };
          // Between any two calls, a host may create up to its current limit.
          const grow = () => {
            for (const host of hosts.values()) {
              const room = host.limit - host.used;
              if (room > 0) host.used += (seeds[step++ % seeds.length]! % (room + 1));
            }
            check();
          };
          const snapshot: RegionShare[] = [...hosts.values()].map((h) => ({ ...h }));
          grow(); // the hosts move after the controller read them
          const final = await rebalance(bound, snapshot, async (region, limit) => {
            const host = hosts.get(region)!;
            host.limit = limit;
            check();
            grow();
            return { ...host };
          });
          check();
          for (const share of final) expect(share.limit).toBe(hosts.get(share.region)!.limit);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('moves unused headroom toward the region that uses it', async () => {
    const hosts = new Map([
      ['eu', { region: 'eu', limit: 50, used: 50 }],
      ['us', { region: 'us', limit: 50, used: 2 }],
    ]);
    const final = await rebalance(100, [...hosts.values()].map((h) => ({ ...h })), async (region, limit) => {
      const host = hosts.get(region)!;
      host.limit = limit;
      return { ...host };
    });
    const eu = final.find((s) => s.region === 'eu')!;
    const us = final.find((s) => s.region === 'us')!;
    expect(eu.limit).toBeGreaterThan(50);
    expect(us.limit).toBeGreaterThanOrEqual(2);
    expect(eu.limit + us.limit).toBeLessThanOrEqual(100);
  });
});
