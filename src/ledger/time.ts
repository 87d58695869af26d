// The last time formatted, again: a group's records all carry its one time, and a batch of
// 1,000 would otherwise format it 2,000 times.
let lastMs = Number.NaN;
let lastIso = '';

export const isoOf = (ms: number): string => {
  if (ms !== lastMs) {
    lastIso = new Date(ms).toISOString();
    lastMs = ms;
  }
  return lastIso;
};
