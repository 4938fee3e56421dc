// Cluster writes as the leader performs them: it stamps ids and times into
// the command, so every member's apply() computes the same state.
import { randomUUID } from 'node:crypto'
import type { AllocClientUpdate, AllocTransition, ApplyResult, GroupScalingEvent, NewEval, NewNode } from '../fsm/commands.ts'
import { collectable, type GcTargets } from '../fsm/gc.ts'
import type { StateStore } from '../fsm/state.ts'
import type { DeploymentStatus, EvalTrigger, Job, JobSpec, Member, NodeStatus, ScalingEvent } from '../structs/index.ts'
import { isLive, specOf } from '../structs/index.ts'
import type { Proposer } from './proposer.ts'

export class WriteError extends Error {
  override name = 'WriteError'
  readonly code: 'not-found' | 'conflict' | 'invalid'
  /** For conflicts: the current modify index the caller should retry against. */
  readonly current: number | undefined
  constructor(code: 'not-found' | 'conflict' | 'invalid', message: string, current?: number) {
    super(message)
    this.code = code
    this.current = current
  }
}

function check(result: ApplyResult): number {
  if (!result.ok) throw new WriteError(result.code, result.error, result.current)
  return result.index
}

export function newEval(jobId: string, triggeredBy: EvalTrigger, now: number, extra: Partial<NewEval> = {}): NewEval {
  return {
    id: randomUUID(), jobId, triggeredBy, status: 'pending', statusDescription: '',
    failedGroups: {}, createTime: now, modifyTime: now, ...extra,
  }
}

export class ClusterOps {
  readonly #proposer: Proposer
  readonly #state: StateStore
  readonly #now: () => number

  constructor(proposer: Proposer, state: StateStore, now: () => number = Date.now) {
    this.#proposer = proposer
    this.#state = state
    this.#now = now
  }

  async registerJob(spec: JobSpec, checkIndex?: number): Promise<{ evalId: string; index: number }> {
    const time = this.#now()
    const ev = newEval(spec.id, 'job-register', time)
    const index = check(await this.#proposer.propose({ type: 'JobRegister', spec, time, eval: ev, ...(checkIndex !== undefined ? { checkIndex } : {}) }))
    return { evalId: ev.id, index }
  }

  /**
   * A new version of the job with the group's count changed (`job scale`, the
   * autoscaler), recorded in the group's scaling history. Refused with a
   * conflict when the job changed since `job` was read.
   */
  async scaleGroup(job: Job, group: string, count: number, event: Omit<ScalingEvent, 'time' | 'from' | 'to'>): Promise<{ evalId: string; index: number }> {
    const time = this.#now()
    const from = job.groups.find((g) => g.name === group)?.count ?? 0
    const spec: JobSpec = { ...specOf(job), groups: job.groups.map((g) => (g.name === group ? { ...g, count } : g)) }
    const ev = newEval(job.id, 'job-scaling', time)
    const scalingEvent: GroupScalingEvent = { group, event: { ...event, time, from, to: count } }
    const index = check(await this.#proposer.propose({ type: 'JobRegister', spec, time, eval: ev, checkIndex: job.modifyIndex, scalingEvent }))
    return { evalId: ev.id, index }
  }

  /** A decision that changed nothing, kept in the group's scaling history. */
  async recordScalingEvent(jobId: string, group: string, event: Omit<ScalingEvent, 'time'>): Promise<number> {
    const time = this.#now()
    return check(await this.#proposer.propose({ type: 'ScalingEventRecord', jobId, scalingEvent: { group, event: { ...event, time } }, time }))
  }

  async deregisterJob(jobId: string, purge: boolean): Promise<{ evalId: string; index: number }> {
    const time = this.#now()
    const ev = newEval(jobId, 'job-deregister', time)
    const index = check(await this.#proposer.propose({ type: 'JobDeregister', jobId, purge, time, eval: ev }))
    return { evalId: ev.id, index }
  }

  /** A node (re)joining: every system job is evaluated, so it gets its allocation there. */
  async registerNode(node: NewNode): Promise<number> {
    const time = this.#now()
    const evals = this.#state.list('jobs').filter((j) => j.type === 'system' && !j.stop).map((j) => newEval(j.id, 'node-update', time, { nodeId: node.id }))
    return check(await this.#proposer.propose({ type: 'NodeRegister', node, time, evals }))
  }

  /**
   * The leader's verdict on a node (from gossip): down → its jobs are
   * evaluated so their allocations are replaced; ready again → system jobs
   * (and blocked evaluations) get another look.
   */
  async setNodeStatus(nodeId: string, status: NodeStatus, description: string): Promise<number> {
    const time = this.#now()
    const jobs = new Set(this.#state.allocsOfNode(nodeId).filter(isLive).map((a) => a.jobId))
    if (status === 'ready') for (const j of this.#state.list('jobs')) if (j.type === 'system' && !j.stop) jobs.add(j.id)
    const evals = [...jobs].map((jobId) => newEval(jobId, 'node-update', time, { nodeId }))
    return check(await this.#proposer.propose({ type: 'NodeStatusUpdate', nodeId, status, description, time, evals }))
  }

  async setEligibility(nodeId: string, eligible: boolean): Promise<number> {
    return check(await this.#proposer.propose({ type: 'NodeEligibility', nodeId, eligible, time: this.#now() }))
  }

  /** Starts (or changes) a drain; `deadlineMs` undefined: no deadline, 0: everything stops at once. */
  async drainNode(nodeId: string, opts: { deadlineMs: number | undefined; ignoreSystem: boolean }): Promise<number> {
    const time = this.#now()
    const drain = { startedAt: time, ignoreSystem: opts.ignoreSystem, ...(opts.deadlineMs !== undefined ? { deadlineAt: time + opts.deadlineMs } : {}) }
    return check(await this.#proposer.propose({ type: 'NodeDrain', nodeId, drain, time }))
  }

  async endDrain(nodeId: string, outcome: 'complete' | 'canceled', eligible: boolean): Promise<number> {
    return check(await this.#proposer.propose({ type: 'NodeDrainEnd', nodeId, outcome, eligible, time: this.#now() }))
  }

  /** The drainer: allocations to migrate, and jobs to evaluate (theirs, and those whose replacements turned healthy). */
  async markForMigration(transitions: AllocTransition[], jobIds: readonly string[]): Promise<number> {
    const time = this.#now()
    const evals = jobIds.map((jobId) => newEval(jobId, 'node-drain', time))
    return check(await this.#proposer.propose({ type: 'AllocDesiredTransition', transitions, evals, time }))
  }

  async upsertMember(member: Omit<Member, 'createIndex' | 'modifyIndex'>): Promise<number> {
    return check(await this.#proposer.propose({ type: 'MemberUpsert', member, time: this.#now() }))
  }

  /**
   * Removes finished evaluations and allocations and stopped jobs whose last
   * change is older than `thresholdMs` (0: all of them): one StateGc write, or
   * none when there is nothing to collect.
   */
  async collectGarbage(thresholdMs: number): Promise<GcTargets & { index: number | null }> {
    const time = this.#now()
    const targets = collectable(this.#state, time - thresholdMs)
    if (targets.evals.length + targets.allocs.length + targets.jobs.length === 0) return { ...targets, index: null }
    return { ...targets, index: check(await this.#proposer.propose({ type: 'StateGc', ...targets, time })) }
  }

  async removeMember(id: string): Promise<number> {
    return check(await this.#proposer.propose({ type: 'MemberRemove', id, time: this.#now() }))
  }

  async putVar(path: string, value: string, cas?: number): Promise<number> {
    return check(await this.#proposer.propose({ type: 'VarPut', path, value, time: this.#now(), ...(cas !== undefined ? { cas } : {}) }))
  }

  async deleteVar(path: string, cas?: number): Promise<number> {
    return check(await this.#proposer.propose({ type: 'VarDelete', path, time: this.#now(), ...(cas !== undefined ? { cas } : {}) }))
  }

  /** A deployment's verdict (watcher or user); `revert` registers that spec as a new version, evaluated at once. */
  async setDeploymentStatus(deploymentId: string, status: DeploymentStatus, statusDescription: string, revert?: JobSpec): Promise<{ index: number; evalId?: string }> {
    const time = this.#now()
    const d = this.#state.get('deployments', deploymentId)
    const ev = revert ? newEval(revert.id, 'deployment-watcher', time) : d && status === 'running' ? newEval(d.jobId, 'deployment-watcher', time) : undefined
    const index = check(await this.#proposer.propose({
      type: 'DeploymentStatusUpdate', deploymentId, status, statusDescription, time, ...(ev ? { eval: ev } : {}), ...(revert ? { revert } : {}),
    }))
    return { index, ...(ev ? { evalId: ev.id } : {}) }
  }

  /** Promotes a deployment's canaries (of `groups`, or all); an evaluation rolls the rest. */
  async promoteDeployment(deploymentId: string, groups?: string[]): Promise<{ index: number; evalId: string }> {
    const time = this.#now()
    const d = this.#state.get('deployments', deploymentId)
    const ev = newEval(d?.jobId ?? '', 'deployment-watcher', time)
    const index = check(await this.#proposer.propose({ type: 'DeploymentPromote', deploymentId, time, eval: ev, ...(groups ? { groups } : {}) }))
    return { index, evalId: ev.id }
  }

  /**
   * Client reports; a failed or finished allocation gets an evaluation of its
   * job, and so does a deployment's allocation whose health was just decided
   * (the rollout continues, or stops).
   */
  async updateAllocs(updates: AllocClientUpdate[]): Promise<number> {
    const time = this.#now()
    const jobs = new Map<string, EvalTrigger>()
    for (const u of updates) {
      const a = this.#state.get('allocs', u.allocId)
      if (a && a.desiredStatus === 'run' && a.clientStatus !== u.clientStatus && (u.clientStatus === 'failed' || u.clientStatus === 'complete')) {
        jobs.set(a.jobId, 'alloc-failure')
      } else if (a && a.desiredStatus === 'run' && a.deploymentId !== undefined && u.deploymentStatus && a.deploymentStatus?.healthy === undefined && !jobs.has(a.jobId)) {
        jobs.set(a.jobId, 'deployment-watcher')
      }
    }
    const evals = [...jobs].map(([jobId, trigger]) => newEval(jobId, trigger, time))
    return check(await this.#proposer.propose({ type: 'AllocClientUpdate', updates, time, evals }))
  }
}
