// When a failed allocation gets its replacement, per the group's reschedule
// policy: a delay growing per failure (so a task that can never start does not
// turn the cluster into a write loop), and a cap on attempts within an interval.
import type { Allocation, ReschedulePolicy } from '../structs/index.ts'

/** The wait before replacement number `previous + 1`. */
export function rescheduleDelay(policy: ReschedulePolicy, previous: number): number {
  const n = Math.min(previous, 60)
  let delay: number
  if (policy.delayFunction === 'exponential') delay = policy.delayMs * 2 ** n
  else if (policy.delayFunction === 'fibonacci') {
    let [a, b] = [policy.delayMs, policy.delayMs]
    for (let i = 0; i < n; i++) [a, b] = [b, a + b]
    delay = a
  } else delay = policy.delayMs
  return policy.maxDelayMs > 0 ? Math.min(delay, policy.maxDelayMs) : delay
}

/** Whether the policy allows replacing `alloc` now. */
export function mayReschedule(policy: ReschedulePolicy, alloc: Pick<Allocation, 'rescheduleHistory'>, now: number): boolean {
  if (policy.unlimited) return true
  const recent = (alloc.rescheduleHistory ?? []).filter((t) => now - t < policy.intervalMs).length
  return recent < policy.attempts
}
