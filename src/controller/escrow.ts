/**
 * Escrow for a limit bounded across regions. Each region's host enforces its own tracker
 * limit locally — no cross-region call on the create path — and the controller keeps the
 * trackers' limits adding up to at most the global bound, moving unused headroom toward the
 * regions that use it, while every region keeps a way to make progress.
 *
 * The split (pure): every region keeps what it uses, and the headroom H (bound − total used)
 * is shared so that no region is starved. With n regions:
 * - H ≥ n: each region first gets a minimum of max(1, ⌊H / 2n⌋); the rest is shared in
 *   proportion to use + 1 (the rounding remainder to the busiest), so busy regions get more
 *   and an idle one always keeps at least one free unit;
 * - 0 < H < n: there are fewer free units than regions, so the H units go to H regions in
 *   turn: the regions in name order, starting at `turn` mod n (the controller advances `turn`
 *   every pass), one unit each;
 * - H ≤ 0 (the bound was lowered under use): every region gets a share of the bound in
 *   proportion to its use, at most its use: nobody creates until usage falls.
 *
 * The moves keep the sum safe at every instant: decreases first (each host answers with its
 * tracker's limit and a fresh recount of its use), then increases, each at most what the bound
 * leaves after every other region's max(limit, used). A host that grew between the read and
 * the move can only have grown up to the limit it had, which is what was counted for it.
 *
 * Guarantees:
 * - Never above the bound: the regions' max(limit, used) add up to at most the bound at every
 *   instant (given they did before), whatever the hosts create or delete meanwhile.
 * - No starvation: a region with demand gets a create through within n passes while room
 *   remains (H ≥ 1 at each pass's read): H ≥ n gives every region a free unit in every pass,
 *   and H < n gives one to every region once in any n consecutive turns. The one exception is
 *   the race the bound is kept under: a region that, between the controller's read and the
 *   move lowering its own share, takes the units it is losing for creates of its own (then
 *   those units went to creates too, and the region over its share refuses until it shrinks).
 */
export interface RegionShare {
  region: string;
  limit: number;
  used: number;
}

const byName = (a: RegionShare, b: RegionShare) => (a.region < b.region ? -1 : a.region > b.region ? 1 : 0);

export function escrowTargets(bound: number, regions: readonly RegionShare[], turn = 0): Map<string, number> {
  const targets = new Map<string, number>();
  const used = regions.reduce((sum, r) => sum + r.used, 0);
  const n = regions.length;
  if (n === 0) return targets;
  const headroom = bound - used;
  if (headroom <= 0) {
    for (const r of regions) targets.set(r.region, used === 0 ? 0 : Math.min(r.used, Math.floor((bound * r.used) / used)));
    return targets;
  }
  if (headroom < n) {
    // Fewer free units than regions: one each to `headroom` regions, in turn.
    const ordered = [...regions].sort(byName);
    const start = ((turn % n) + n) % n;
    ordered.forEach((r, i) => targets.set(r.region, r.used + ((i - start + n) % n < headroom ? 1 : 0)));
    return targets;
  }
  const minimum = Math.max(1, Math.floor(headroom / (2 * n)));
  const rest = headroom - minimum * n;
  const weights = regions.map((r) => r.used + 1);
  const total = weights.reduce((a, b) => a + b, 0);
  let given = 0;
  regions.forEach((r, i) => {
    const share = Math.floor((rest * weights[i]!) / total);
    given += share;
    targets.set(r.region, r.used + minimum + share);
  });
  // The rounding remainder goes to the busiest region (the first by name on a tie).
  const busiest = [...regions].sort((a, b) => b.used - a.used || byName(a, b))[0]!;
  targets.set(busiest.region, targets.get(busiest.region)! + (rest - given));
  return targets;
}

/** Sets one region's tracker limit and returns the tracker as its host reports it after. */
export type MoveTracker = (region: string, limit: number) => Promise<RegionShare>;

/**
 * Moves the trackers toward the targets (escrowTargets with `turn`), decreases first, never
 * letting the sum of max(limit, used) over regions pass the bound through an increase.
 * Returns the final shares.
 */
export async function rebalance(
  bound: number,
  regions: readonly RegionShare[],
  move: MoveTracker,
  turn = 0,
): Promise<RegionShare[]> {
  const targets = escrowTargets(bound, regions, turn);
  const state = new Map(regions.map((r) => [r.region, { ...r }]));
  const held = (r: RegionShare) => Math.max(r.limit, r.used);
  for (const r of regions) {
    const target = targets.get(r.region)!;
    if (target < r.limit) state.set(r.region, await move(r.region, target));
  }
  for (const r of [...regions].sort(byName)) {
    const current = state.get(r.region)!;
    const target = targets.get(r.region)!;
    if (target <= current.limit) continue;
    const others = [...state.values()].filter((s) => s.region !== r.region).reduce((sum, s) => sum + held(s), 0);
    const next = Math.min(target, bound - others);
    if (next > current.limit) state.set(r.region, await move(r.region, next));
  }
  return regions.map((r) => state.get(r.region)!);
}
