/**
 * Escrow for a limit bounded across regions. Each region's host enforces its own tracker
 * limit locally — no cross-region call on the create path — and the controller keeps the
 * trackers' limits adding up to at most the global bound, moving unused headroom toward the
 * regions that use it.
 *
 * The split (pure): every region keeps what it uses; the headroom (bound − total used) is
 * shared in proportion to use + 1, so busy regions get more and idle ones keep a little. If
 * usage already adds up to the bound or more (it was lowered), every region gets a share of
 * the bound in proportion to its use, at most its use: nobody creates until usage falls.
 *
 * The moves keep the sum safe at every instant: decreases first (each host answers with its
 * tracker's limit and a fresh recount of its use), then increases, each at most what the bound
 * leaves after every other region's max(limit, used). A host that grew between the read and
 * the move can only have grown up to the limit it had, which is what was counted for it.
 */
export interface RegionShare {
  region: string;
  limit: number;
  used: number;
}

export function escrowTargets(bound: number, regions: readonly RegionShare[]): Map<string, number> {
  const targets = new Map<string, number>();
  const used = regions.reduce((sum, r) => sum + r.used, 0);
  if (regions.length === 0) return targets;
  if (used >= bound) {
    for (const r of regions) targets.set(r.region, used === 0 ? 0 : Math.min(r.used, Math.floor((bound * r.used) / used)));
    return targets;
  }
  const headroom = bound - used;
  const weights = regions.map((r) => r.used + 1);
  const total = weights.reduce((a, b) => a + b, 0);
  let given = 0;
  regions.forEach((r, i) => {
    const share = Math.floor((headroom * weights[i]!) / total);
    given += share;
    targets.set(r.region, r.used + share);
  });
  // The rounding remainder goes to the busiest region (the first by name on a tie).
  const busiest = [...regions].sort((a, b) => b.used - a.used || (a.region < b.region ? -1 : 1))[0]!;
  targets.set(busiest.region, targets.get(busiest.region)! + (headroom - given));
  return targets;
}

/** Sets one region's tracker limit and returns the tracker as its host reports it after. */
export type MoveTracker = (region: string, limit: number) => Promise<RegionShare>;

/**
 * Moves the trackers toward the targets, decreases first, never letting the sum of
 * max(limit, used) over regions pass the bound through an increase. Returns the final shares.
 */
export async function rebalance(bound: number, regions: readonly RegionShare[], move: MoveTracker): Promise<RegionShare[]> {
  const targets = escrowTargets(bound, regions);
  const state = new Map(regions.map((r) => [r.region, { ...r }]));
  const held = (r: RegionShare) => Math.max(r.limit, r.used);
  for (const r of regions) {
    const target = targets.get(r.region)!;
    if (target < r.limit) state.set(r.region, await move(r.region, target));
  }
  for (const r of [...regions].sort((a, b) => (a.region < b.region ? -1 : 1))) {
    const current = state.get(r.region)!;
    const target = targets.get(r.region)!;
    if (target <= current.limit) continue;
    const others = [...state.values()].filter((s) => s.region !== r.region).reduce((sum, s) => sum + held(s), 0);
    const next = Math.min(target, bound - others);
    if (next > current.limit) state.set(r.region, await move(r.region, next));
  }
  return regions.map((r) => state.get(r.region)!);
}
