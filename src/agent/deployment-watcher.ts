// The deployment watcher, run by the leader: moves each running deployment's
// status as its allocations' health comes in (the FSM keeps the counts):
// failed on an unhealthy allocation or a missed progress deadline (with
// auto_revert, the latest stable version is registered again), canaries
// promoted when auto_promote and all are healthy, successful when every group
// is done (the version becomes stable). decideDeployment() is the pure part.
import type { AppliedEvent, Fsm } from '../fsm/fsm.ts'
import type { StateStore } from '../fsm/state.ts'
import { formatDuration } from '../jobspec/duration.ts'
import type { Deployment, Job, JobSpec } from '../structs/index.ts'
import { awaitsPromotion, isAllocHealthy, isDeploymentGroupDone, specOf } from '../structs/index.ts'
import type { Logger } from './leader.ts'
import type { ClusterOps } from './ops.ts'

export type DeploymentDecision =
  | { kind: 'wait'; nextCheckAt?: number }
  | { kind: 'fail'; description: string; revert?: { version: number; spec: JobSpec } }
  | { kind: 'promote' }
  | { kind: 'succeed' }

export interface DecisionInputs {
  /** Versions of the job, any order. */
  versions: readonly Job[]
  /** The job as it is now (undefined: gone). */
  job: Job | undefined
  allocHealthy(allocId: string): boolean
  now: number
}

/** What the watcher does with a running deployment now. */
export function decideDeployment(d: Deployment, inputs: DecisionInputs): DeploymentDecision {
  if (d.status !== 'running') return { kind: 'wait' }
  const groups = Object.entries(d.groups)
  let failure: string | undefined
  for (const [name, g] of groups) {
    if (g.unhealthy > 0) {
      failure = `${g.unhealthy} allocation(s) of group "${name}" unhealthy`
      break
    }
  }
  let nextCheckAt: number | undefined
  if (failure === undefined) {
    for (const [name, g] of groups) {
      // Canaries all healthy and waiting for a manual promotion: no deadline (as Nomad).
      const waitingForUser = awaitsPromotion(g) && !g.autoPromote && g.placedCanaries.length >= g.desiredCanaries && g.placedCanaries.every(inputs.allocHealthy)
      if (isDeploymentGroupDone(g) || waitingForUser || g.requireProgressBy === undefined) continue
      if (inputs.now >= g.requireProgressBy) {
        failure = `group "${name}" made no progress within progress_deadline ${formatDuration(g.progressDeadlineMs)}`
        break
      }
      nextCheckAt = Math.min(nextCheckAt ?? Infinity, g.requireProgressBy)
    }
  }
  if (failure !== undefined) {
    if (!groups.some(([, g]) => g.autoRevert)) return { kind: 'fail', description: `Failed: ${failure}` }
    const target = revertTarget(d, inputs)
    if (!target) return { kind: 'fail', description: `Failed: ${failure}; no stable job version to revert to` }
    return { kind: 'fail', description: `Failed: ${failure}; rolling back to job version ${target.version}`, revert: { version: target.version, spec: specOf(target) } }
  }
  const promotable = groups.filter(([, g]) => awaitsPromotion(g))
  if (promotable.length > 0 && promotable.every(([, g]) => g.autoPromote && g.placedCanaries.length >= g.desiredCanaries && g.placedCanaries.every(inputs.allocHealthy))) {
    return { kind: 'promote' }
  }
  if (groups.every(([, g]) => isDeploymentGroupDone(g))) return { kind: 'succeed' }
  return nextCheckAt === undefined ? { kind: 'wait' } : { kind: 'wait', nextCheckAt }
}

/** The latest stable version before the deployment's whose spec differs from the job's now (Nomad's auto-revert target). */
export function revertTarget(d: Deployment, inputs: Pick<DecisionInputs, 'versions' | 'job'>): Job | undefined {
  const job = inputs.job
  if (!job || job.stop || job.version !== d.jobVersion) return undefined
  const current = specOf(job)
  return [...inputs.versions]
    .filter((v) => v.stable === true && v.version < d.jobVersion && v.createIndex === d.jobCreateIndex)
    .sort((a, b) => b.version - a.version)
    .find((v) => JSON.stringify(specOf(v)) !== JSON.stringify(current))
}

export class DeploymentWatcher {
  readonly #fsm: Fsm
  readonly #ops: ClusterOps
  readonly #log: Logger
  /** Deployments with a write in flight: not decided again until it lands. */
  readonly #busy = new Set<string>()
  #timer: NodeJS.Timeout | undefined
  #scheduled = false
  #stopped = false
  readonly #onApplied = (e: AppliedEvent) => {
    if (e.changes.some((c) => c.table === 'deployments' || (c.table === 'allocs' && c.value?.deploymentId !== undefined))) this.#wake()
  }

  constructor(fsm: Fsm, ops: ClusterOps, log: Logger) {
    this.#fsm = fsm
    this.#ops = ops
    this.#log = log
  }

  start(): void {
    this.#fsm.on('applied', this.#onApplied)
    this.#wake()
  }

  stop(): void {
    this.#stopped = true
    this.#fsm.off('applied', this.#onApplied)
    clearTimeout(this.#timer)
  }

  #wake(): void {
    if (this.#scheduled || this.#stopped) return
    this.#scheduled = true
    setImmediate(() => {
      this.#scheduled = false
      this.#check()
    })
  }

  #check(): void {
    if (this.#stopped) return
    const state = this.#fsm.state
    const now = Date.now()
    let next = Infinity
    for (const d of state.list('deployments')) {
      if (d.status !== 'running' || this.#busy.has(d.id)) continue
      const decision = decideDeployment(d, inputsFor(state, d, now))
      if (decision.kind === 'wait') {
        if (decision.nextCheckAt !== undefined) next = Math.min(next, decision.nextCheckAt)
        continue
      }
      this.#busy.add(d.id)
      void this.#act(d, decision).finally(() => {
        this.#busy.delete(d.id)
        this.#wake()
      })
    }
    clearTimeout(this.#timer)
    if (next < Infinity) this.#timer = setTimeout(() => this.#wake(), Math.max(0, next - Date.now()) + 10)
  }

  async #act(d: Deployment, decision: Exclude<DeploymentDecision, { kind: 'wait' }>): Promise<void> {
    const what = `deployment ${d.id.slice(0, 8)} of job ${d.jobId} version ${d.jobVersion}`
    try {
      if (decision.kind === 'promote') {
        await this.#ops.promoteDeployment(d.id)
        this.#log.info(`${what}: canaries healthy, promoted (auto_promote)`)
      } else if (decision.kind === 'succeed') {
        await this.#ops.setDeploymentStatus(d.id, 'successful', 'Deployment completed successfully')
        this.#log.info(`${what}: successful`)
      } else {
        await this.#ops.setDeploymentStatus(d.id, 'failed', decision.description, decision.revert?.spec)
        this.#log.warn(`${what}: ${decision.description}`)
      }
    } catch (err) {
      // Lost leadership or a race with another write: the next change or check decides again.
      this.#log.warn(`${what}: ${decision.kind} not written: ${(err as Error).message}`)
      if (!this.#stopped) {
        clearTimeout(this.#timer)
        this.#timer = setTimeout(() => this.#wake(), 1_000)
      }
    }
  }
}

function inputsFor(state: StateStore, d: Deployment, now: number): DecisionInputs {
  return {
    versions: state.jobVersions(d.jobId),
    job: state.get('jobs', d.jobId),
    allocHealthy: (id) => {
      const a = state.get('allocs', id)
      return a !== undefined && isAllocHealthy(a)
    },
    now,
  }
}
