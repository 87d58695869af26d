// Goal: the escrow that splits a global bound among regions keeps its two promises. Never above
// the bound: the regions' max(limit, used) never add up to more than the bound — at every
// instant of a rebalance, even while hosts keep creating and deleting between the controller's
// read and its moves. No starvation: every region keeps what it uses, gets a minimum share of
// the headroom (or, with fewer free units than regions, a unit in turn), so a region with
// demand gets a create through within n passes while room remains — the case that starved
// before: a bound of 10 over two regions, 5 used in one, left the idle one a share of 0.
// Method: escrowTargets on examples and with fast-check (random bounds, usages and turns);
// rebalance against simulated hosts whose usage moves at random moments between the
// controller's calls, every state checked; and a simulation of 2–4 regions with random
// create/delete streams between (and during) controller passes, checking the bound after every
// step and, for every window of n passes with room at each pass's read, that each region that
// tried to create in every round of the window got a create through.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { escrowTargets, rebalance, type RegionShare } from '../../src/controller/escrow.js';

const sum = (values: Iterable<number>) => [...values].reduce((a, b) => a + b, 0);
const held = (r: { limit: number; used: number }) => Math.max(r.limit, r.used);

/** Simulated hosts: a limit and a count each; the controller's moves set the limit. */
function hostsOf(start: readonly RegionShare[]) {
  const hosts = new Map(start.map((r) => [r.region, { ...r }]));
  const move = async (region: string, limit: number): Promise<RegionShare> => {
    const host = hosts.get(region)!;
    host.limit = limit;
    return { ...host };
  };
  return { hosts, move, snapshot: (): RegionShare[] => [...hosts.values()].map((h) => ({ ...h })) };
}

describe('escrowTargets', () => {
  it('gives each region its use, a minimum of the headroom, and the rest in proportion to use + 1, remainder to the busiest', () => {
    const targets = escrowTargets(100, [
      { region: 'eu', limit: 50, used: 30 },
      { region: 'us', limit: 50, used: 9 },
    ]);
    // Headroom 61, minimum max(1, ⌊61/4⌋) = 15 each, rest 31 by weights 31 and 10:
    // ⌊31·31/41⌋ = 23, ⌊31·10/41⌋ = 7, remainder 1 → eu.
    expect(Object.fromEntries(targets)).toEqual({ eu: 30 + 15 + 23 + 1, us: 9 + 15 + 7 });
  });

  it('no longer starves an idle region: bound 10, two regions, 5 used in one', () => {
    const targets = escrowTargets(10, [
      { region: 'eu', limit: 10, used: 5 },
      { region: 'us', limit: 0, used: 0 },
    ]);
    // Headroom 5, minimum 1 each, rest 3 by weights 6 and 1: ⌊18/7⌋ = 2, 0, remainder 1 → eu.
    expect(Object.fromEntries(targets)).toEqual({ eu: 9, us: 1 });
  });

  it('with fewer free units than regions, gives one each to regions in turn', () => {
    const regions = [
      { region: 'c', limit: 2, used: 2 },
      { region: 'a', limit: 4, used: 4 },
      { region: 'b', limit: 3, used: 3 },
    ];
    // Bound 11, used 9: two free units, three regions; name order a, b, c from `turn`.
    const given = (turn: number) =>
      Object.entries(Object.fromEntries(escrowTargets(11, regions, turn)))
        .filter(([region, target]) => target > regions.find((r) => r.region === region)!.used)
        .map(([region]) => region)
        .sort();
    expect([0, 1, 2, 3].map(given)).toEqual([['a', 'b'], ['b', 'c'], ['a', 'c'], ['a', 'b']]);
  });

  it('when use already reaches the bound, shares the bound by use and never above use', () => {
    const targets = escrowTargets(10, [
      { region: 'a', limit: 8, used: 8 },
      { region: 'b', limit: 8, used: 7 },
    ]);
    expect(Object.fromEntries(targets)).toEqual({ a: 5, b: 4 });
  });

  it('for any bound, usage and turn: at most the bound; each its use and a free unit while units suffice; one unit each in turn otherwise', () => {
    fc.assert(
      fc.property(
        fc.nat(10_000),
        fc.array(fc.record({ limit: fc.nat(5000), used: fc.nat(5000) }), { minLength: 1, maxLength: 6 }),
        fc.nat(1000),
        (bound, rows, turn) => {
          const regions = rows.map((row, i) => ({ region: `r${i}`, ...row }));
          const n = regions.length;
          const headroom = bound - sum(regions.map((r) => r.used));
          const targets = escrowTargets(bound, regions, turn);
          expect(sum(targets.values())).toBeLessThanOrEqual(bound);
          for (const r of regions) {
            const target = targets.get(r.region)!;
            expect(target).toBeGreaterThanOrEqual(0);
            if (headroom >= n) expect(target).toBeGreaterThanOrEqual(r.used + Math.max(1, Math.floor(headroom / (2 * n))));
            else if (headroom > 0) expect([r.used, r.used + 1]).toContain(target);
            else expect(target).toBeLessThanOrEqual(r.used);
          }
          if (headroom > 0) expect(sum(targets.values())).toBe(bound);
          if (headroom > 0 && headroom < n) {
            // Over n consecutive turns every region gets its unit at least once.
            for (const r of regions) {
              const turns = Array.from({ length: n }, (_, k) => escrowTargets(bound, regions, turn + k).get(r.region)!);
              expect(turns.some((target) => target === r.used + 1)).toBe(true);
            }
          }
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
        fc.nat(10),
        async (bound, usedRows, seeds, turn) => {
          // Start from a valid state: limits adding up to at most the bound, use within them.
          const n = usedRows.length;
          const { hosts, move, snapshot } = hostsOf(
            usedRows.map((u, i) => {
              const limit = Math.floor(bound / n);
              return { region: `r${i}`, limit, used: Math.min(u, limit) };
            }),
          );
          let step = 0;
          const check = () => {
            const states = [...hosts.values()];
            expect(sum(states.map((s) => s.limit))).toBeLessThanOrEqual(bound);
            expect(sum(states.map(held))).toBeLessThanOrEqual(bound);
          };
          // Between any two calls, a host may create up to its current limit.
          const grow = () => {
            for (const host of hosts.values()) {
              const room = host.limit - host.used;
              if (room > 0) host.used += seeds[step++ % seeds.length]! % (room + 1);
            }
            check();
          };
          const read = snapshot();
          grow(); // the hosts move after the controller read them
          const final = await rebalance(bound, read, async (region, limit) => {
            const answer = await move(region, limit);
            check();
            grow();
            return answer;
          }, turn);
          check();
          for (const share of final) expect(share.limit).toBe(hosts.get(share.region)!.limit);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('gives the idle region of the starvation case a unit it can create with', async () => {
    const { hosts, move, snapshot } = hostsOf([
      { region: 'eu', limit: 10, used: 5 },
      { region: 'us', limit: 0, used: 0 },
    ]);
    await rebalance(10, snapshot(), move);
    expect(hosts.get('us')!.limit).toBeGreaterThanOrEqual(1);
    expect(hosts.get('eu')!.limit + hosts.get('us')!.limit).toBeLessThanOrEqual(10);
  });

  it('moves unused headroom toward the region that uses it', async () => {
    const { move, snapshot } = hostsOf([
      { region: 'eu', limit: 50, used: 50 },
      { region: 'us', limit: 50, used: 2 },
    ]);
    const final = await rebalance(100, snapshot(), move);
    const eu = final.find((s) => s.region === 'eu')!;
    const us = final.find((s) => s.region === 'us')!;
    expect(eu.limit).toBeGreaterThan(50);
    expect(us.limit).toBeGreaterThan(2);
    expect(eu.limit + us.limit).toBeLessThanOrEqual(100);
  });
});

type Op = 'create' | 'delete';

describe('escrow over time: random create and delete streams in 2–4 regions, with controller passes', () => {
  const op = fc.constantFrom<Op>('create', 'create', 'delete');
  const scenario = fc.record({
    bound: fc.integer({ min: 0, max: 30 }),
    n: fc.integer({ min: 2, max: 4 }),
    // Per round (a controller pass, then the hosts' streams), per region: its operations.
    rounds: fc.array(fc.array(fc.array(op, { maxLength: 4 }), { minLength: 4, maxLength: 4 }), { minLength: 1, maxLength: 40 }),
    // Whether the hosts also act between the controller's calls within a pass, and how.
    during: fc.boolean(),
    seeds: fc.array(fc.nat(), { minLength: 1, maxLength: 16 }),
  });

  it('never passes the bound, and a region with demand gets a create through within n passes while room remains', async () => {
    await fc.assert(
      fc.asyncProperty(scenario, async ({ bound, n, rounds, during, seeds }) => {
        const regions = ['r0', 'r1', 'r2', 'r3'].slice(0, n);
        // No trackers yet: the controller makes each at 0, holding nothing of the bound.
        const { hosts, move, snapshot } = hostsOf(regions.map((region) => ({ region, limit: 0, used: 0 })));
        let now = 0;
        const created: { region: string; at: number }[] = [];
        const apply = (region: string, what: Op) => {
          const host = hosts.get(region)!;
          now += 1;
          if (what === 'create' && host.used < host.limit) {
            host.used += 1;
            created.push({ region, at: now });
          }
          if (what === 'delete' && host.used > 0) host.used -= 1;
          expect(sum([...hosts.values()].map(held))).toBeLessThanOrEqual(bound);
        };
        let step = 0;
        const meanwhile = () => {
          if (!during) return;
          for (const region of regions) {
            const pick = seeds[step++ % seeds.length]! % 3;
            if (pick > 0) apply(region, pick === 1 ? 'create' : 'delete');
          }
        };
        const passes: { start: number; end: number; room: boolean; race: boolean }[] = [];
        for (const [turn, streams] of rounds.entries()) {
          const start = (now += 1);
          const read = snapshot();
          meanwhile();
          let race = false;
          const targets = new Map(read.map((r) => [r.region, r.limit]));
          await rebalance(bound, read, async (region, limit) => {
            const answer = await move(region, limit);
            // The race the promise excepts: a lowered region answers with more in use than
            // its new share (it took the units it was losing for creates of its own).
            if (limit < targets.get(region)! && answer.used > limit) race = true;
            targets.set(region, limit);
            meanwhile();
            return answer;
          }, turn);
          regions.forEach((region, i) => streams[i]!.forEach((what) => apply(region, what)));
          passes.push({ start, end: now, room: bound - sum(read.map((r) => r.used)) >= 1, race });
        }
        // Every window of n passes with room at each read (and no race): every region that
        // tried to create after each of them got a create through in the window.
        for (let first = 0; first + n <= passes.length; first++) {
          const window = passes.slice(first, first + n);
          if (!window.every((p) => p.room && !p.race)) continue;
          regions.forEach((region, i) => {
            const demand = rounds.slice(first, first + n).every((streams) => streams[i]!.includes('create'));
            if (!demand) return;
            const through = created.some((c) => c.region === region && c.at >= window[0]!.start && c.at <= window.at(-1)!.end);
            expect(through, `${region} got no create through in passes ${first}–${first + n - 1}`).toBe(true);
          });
        }
        // Without the hosts acting during passes, the race cannot happen.
        if (!during) expect(passes.filter((p) => p.race)).toEqual([]);
      }),
      { numRuns: 500 },
    );
  });
});
