// Summaries of timed runs, shared by `nabla bench` and the bench/ scripts.

export interface TimingSummary {
  median: number;
  min: number;
  max: number;
}

/** The median of ascending `sorted` (the mean of the two middle values for an even count). */
export function median(sorted: readonly number[]): number {
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Median, min and max of run times (any order). */
export function summarize(times: readonly number[]): TimingSummary {
  const sorted = [...times].sort((a, b) => a - b);
  return { median: median(sorted), min: sorted[0], max: sorted[sorted.length - 1] };
}
