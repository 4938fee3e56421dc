// The client's verdict on an allocation's health, as Nomad's health hook: the
// allocation is healthy once every long-running task has been running (and,
// with health_check "checks", every check passing) for min_healthy_time
// without interruption; unhealthy if a task fails or restarts first, or if
// healthy_deadline passes. Decided once. Pure: task states and time in,
// verdict and when to look again out.
import type { ServiceHealth, ServiceSpec, Task, TaskState, UpdateStrategy } from '../structs/index.ts'
import { isEphemeralTask } from '../structs/index.ts'
import { formatDuration } from '../jobspec/duration.ts'

export interface HealthVerdict {
  healthy: boolean
  /** Why, for the allocation's events and logs. */
  reason: string
  /** When it was decided, ms. */
  time: number
}

export interface HealthObservation {
  verdict?: HealthVerdict
  /** Undecided: observe again at this time even if nothing changes (min_healthy_time or the deadline ends). */
  recheckAt?: number
}

export class AllocHealthTracker {
  readonly #strategy: Pick<UpdateStrategy, 'minHealthyTimeMs' | 'healthyDeadlineMs' | 'healthCheck'>
  readonly #tasks: readonly Task[]
  /** Services with checks: with health_check "checks" they must pass too. */
  readonly #services: readonly ServiceSpec[]
  readonly #deadline: number
  /** Restarts each task had when tracking began (an agent restart keeps the counts). */
  readonly #baseRestarts: ReadonlyMap<string, number>
  /** Since when every condition has held; undefined while one does not. */
  #since: number | undefined
  #verdict: HealthVerdict | undefined

  constructor(
    strategy: Pick<UpdateStrategy, 'minHealthyTimeMs' | 'healthyDeadlineMs' | 'healthCheck'>,
    tasks: readonly Task[], startedAt: number, previous: Readonly<Record<string, TaskState>> = {}, services: readonly ServiceSpec[] = [],
  ) {
    this.#strategy = strategy
    this.#tasks = tasks
    this.#services = services.filter((s) => s.checks?.length)
    this.#deadline = startedAt + strategy.healthyDeadlineMs
    this.#baseRestarts = new Map(tasks.map((t) => [t.name, previous[t.name]?.restarts ?? 0]))
  }

  get verdict(): HealthVerdict | undefined {
    return this.#verdict
  }

  observe(states: Readonly<Record<string, TaskState>>, now: number, services: Readonly<Record<string, ServiceHealth>> = {}): HealthObservation {
    if (this.#verdict) return { verdict: this.#verdict }
    const unhealthy = (reason: string) => ({ verdict: (this.#verdict = { healthy: false, reason, time: now }) })
    for (const t of this.#tasks) {
      const s = states[t.name]
      if (!s) continue
      if (s.failed) return unhealthy(`task "${t.name}" failed`)
      if (s.restarts > (this.#baseRestarts.get(t.name) ?? 0)) return unhealthy(`task "${t.name}" restarted`)
    }
    const waiting = this.#waitingFor(states, services)
    if (waiting === undefined) {
      this.#since ??= now
      const healthyAt = this.#since + this.#strategy.minHealthyTimeMs
      if (now >= healthyAt) {
        const checks = this.#strategy.healthCheck === 'checks' && (this.#services.length > 0 || this.#tasks.some((t) => t.checks?.length)) ? ' with checks passing' : ''
        return { verdict: (this.#verdict = { healthy: true, reason: `tasks running${checks} for ${formatDuration(this.#strategy.minHealthyTimeMs)}`, time: now }) }
      }
      if (healthyAt <= this.#deadline) return { recheckAt: healthyAt }
    } else {
      this.#since = undefined
    }
    if (now >= this.#deadline) {
      return unhealthy(`not healthy within healthy_deadline ${formatDuration(this.#strategy.healthyDeadlineMs)}${waiting ? `: ${waiting}` : ''}`)
    }
    return { recheckAt: this.#deadline }
  }

  /** What keeps the allocation from counting as healthy now; undefined when nothing does. */
  #waitingFor(states: Readonly<Record<string, TaskState>>, services: Readonly<Record<string, ServiceHealth>>): string | undefined {
    for (const t of this.#tasks) {
      if (isEphemeralTask(t) || t.lifecycle?.hook === 'poststop') continue
      const s = states[t.name]
      if (s?.state !== 'running') return `task "${t.name}" is not running`
      if (this.#strategy.healthCheck === 'checks' && t.checks?.length && s.health !== 'healthy') return `checks of task "${t.name}" are not passing`
    }
    if (this.#strategy.healthCheck !== 'checks') return undefined
    for (const svc of this.#services) {
      if (services[svc.name]?.status !== 'passing') return `checks of service "${svc.name}" are not passing`
    }
    return undefined
  }
}
