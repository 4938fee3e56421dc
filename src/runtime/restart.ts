// Restart policy, as Nomad's: `attempts` restarts within `interval`, each after
// `delay`; once exhausted, mode "fail" fails the task and mode "delay" waits
// for the interval to end and starts counting again. Pure: time comes in.
import type { JobType, RestartPolicy } from '../structs/index.ts'

export type RestartDecision =
  | { action: 'restart'; delayMs: number; reason: string }
  | { action: 'fail'; reason: string }
  | { action: 'complete'; reason: string }

export interface ExitInfo {
  exitCode: number
  /** Start failed and retrying cannot help (image missing, command not found, ...). */
  unrecoverable?: boolean
  /** The agent stopped the task to restart it (failing health checks): a failure whatever the exit code. */
  restartTriggered?: boolean
}

export class RestartTracker {
  readonly #policy: RestartPolicy
  readonly #jobType: JobType
  readonly #completeOnSuccess: boolean
  #count = 0
  #intervalStart: number

  /** completeOnSuccess: exit 0 completes the task whatever the job type (lifecycle and non-essential tasks). */
  constructor(policy: RestartPolicy, jobType: JobType, now: number, completeOnSuccess = false) {
    this.#policy = policy
    this.#jobType = jobType
    this.#intervalStart = now
    this.#completeOnSuccess = completeOnSuccess
  }

  onExit(exit: ExitInfo, now: number): RestartDecision {
    if (exit.unrecoverable) return { action: 'fail', reason: 'error is not recoverable' }
    if ((this.#jobType === 'batch' || this.#completeOnSuccess) && exit.exitCode === 0 && !exit.restartTriggered) return { action: 'complete', reason: 'exited successfully' }
    const { attempts, intervalMs, delayMs, mode } = this.#policy
    if (now - this.#intervalStart >= intervalMs) {
      this.#count = 0
      this.#intervalStart = now
    }
    this.#count++
    if (this.#count <= attempts) {
      return { action: 'restart', delayMs, reason: `restart ${this.#count} of ${attempts} within ${intervalMs / 1000}s` }
    }
    if (mode === 'delay') {
      const wait = Math.max(delayMs, this.#intervalStart + intervalMs - now)
      this.#count = 0
      this.#intervalStart = now + wait
      return { action: 'restart', delayMs: wait, reason: `attempts exhausted; waiting for the interval to end` }
    }
    return { action: 'fail', reason: `exceeded ${attempts} restart attempt(s) within ${intervalMs / 1000}s` }
  }
}
