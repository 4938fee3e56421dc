// When a failed allocation gets its replacement: exponential backoff, so a
// task that can never start does not turn the cluster into a write loop.
export const RESCHEDULE_BASE_DELAY_MS = 5_000
export const RESCHEDULE_MAX_DELAY_MS = 5 * 60_000

export function rescheduleDelay(previousReschedules: number): number {
  return Math.min(RESCHEDULE_MAX_DELAY_MS, RESCHEDULE_BASE_DELAY_MS * 2 ** Math.min(previousReschedules, 16))
}
