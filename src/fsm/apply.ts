// apply(): the deterministic transition function of the cluster state.
// Same state + same command → same changes, on every member, every time.
import { isDeepStrictEqual } from 'node:util'
import type { Deployment, DeploymentGroup, Job, JobSpec } from '../structs/index.ts'
import { isDeploymentActive, isLive, SCALING_EVENTS_KEPT, scalingKey, specOf } from '../structs/index.ts'
import type { ApplyResult, Command, GroupScalingEvent, NewEval } from './commands.ts'
import { jobVersionKey, newestDeployment, type Change, type Rows, type StateReader, type StateStore, type TableName } from './state.ts'
import { isGarbageAlloc, isGarbageEval, isGarbageJob } from './gc.ts'

/** A write-buffering view over the store; reads see the transaction's own writes. */
class Tx implements StateReader {
  readonly #base: StateStore
  readonly #writes = new Map<string, Change>()

  constructor(base: StateStore) {
    this.#base = base
  }

  /** The store under the transaction (without its writes). */
  get base(): StateStore {
    return this.#base
  }

  get<T extends TableName>(table: T, key: string): Rows[T] | undefined {
    const w = this.#writes.get(`${table}/${key}`)
    if (w) return (w.value ?? undefined) as Rows[T] | undefined
    return this.#base.get(table, key)
  }

  put<T extends TableName>(table: T, key: string, value: Rows[T]): void {
    this.#writes.set(`${table}/${key}`, { table, key, value } as Change)
  }

  delete(table: TableName, key: string): void {
    this.#writes.set(`${table}/${key}`, { table, key, value: null })
  }

  /** Ports published by other jobs' services (one command registers one job, so the base is current). */
  publishedPorts() {
    return this.#base.publishedPorts()
  }

  allocsOfJob(jobId: string) {
    return this.#overlayAllocs(this.#base.allocsOfJob(jobId), (a) => a.jobId === jobId)
  }

  allocsOfNode(nodeId: string) {
    return this.#overlayAllocs(this.#base.allocsOfNode(nodeId), (a) => a.nodeId === nodeId)
  }

  latestDeployment(jobId: string) {
    const byId = new Map(this.#base.deploymentsOfJob(jobId).map((d) => [d.id, d]))
    for (const w of this.#writes.values()) {
      if (w.table !== 'deployments') continue
      if (w.value && w.value.jobId === jobId) byId.set(w.key, w.value)
      else byId.delete(w.key)
    }
    return newestDeployment(byId.values(), jobId)
  }

  #overlayAllocs(base: Rows['allocs'][], match: (a: Rows['allocs']) => boolean): Rows['allocs'][] {
    const byId = new Map(base.map((a) => [a.id, a]))
    for (const w of this.#writes.values()) {
      if (w.table !== 'allocs') continue
      if (w.value && match(w.value)) byId.set(w.key, w.value)
      else byId.delete(w.key)
    }
    return [...byId.values()]
  }

  get changes(): Change[] {
    return [...this.#writes.values()]
  }
}

export interface Applied {
  changes: Change[]
  result: ApplyResult
}

export function applyCommand(state: StateStore, index: number, cmd: Command): Applied {
  const tx = new Tx(state)
  const result = dispatch(tx, index, cmd)
  // A refused command changes nothing.
  return { changes: result.ok ? tx.changes : [], result }
}

function fail(index: number, code: 'not-found' | 'conflict' | 'invalid', error: string, current?: number): ApplyResult {
  return current === undefined ? { ok: false, index, code, error } : { ok: false, index, code, error, current }
}

/** Check-and-set: 0 means "must not exist", N means "modifyIndex must be N". */
function casProblem(index: number, path: string, cas: number | undefined, current: Rows['vars'] | undefined): ApplyResult | null {
  if (cas === undefined) return null
  const at = current?.modifyIndex ?? 0
  if (cas === at) return null
  return fail(index, 'conflict', current
    ? `variable "${path}" was modified at index ${at}, not ${cas}`
    : `variable "${path}" does not exist (cas ${cas} expects index ${cas})`, at)
}

function putEval(tx: Tx, index: number, ev: NewEval): void {
  const prev = tx.get('evals', ev.id)
  tx.put('evals', ev.id, { ...ev, createIndex: prev?.createIndex ?? index, modifyIndex: index })
}

/**
 * The leader's plan was computed against the state of a moment ago; before it
 * commits, every placement must still fit: its node ready, and CPU, memory
 * and host ports not overcommitted once this plan's stops are taken off.
 * (Deterministic, so every member reaches the same verdict.)
 */
function planConflict(tx: Tx, cmd: Extract<Command, { type: 'PlanApply' }>): string | null {
  const stopping = new Set(cmd.stop.map((s) => s.allocId))
  const byNode = new Map<string, NewAllocLike[]>()
  for (const a of cmd.place) {
    const list = byNode.get(a.nodeId) ?? []
    list.push(a)
    byNode.set(a.nodeId, list)
  }
  for (const [nodeId, placed] of byNode) {
    const node = tx.get('nodes', nodeId)
    if (!node) return `node ${nodeId} is not registered`
    if (node.status !== 'ready') return `node ${node.name} is ${node.status}`
    if (!node.eligible) return `node ${node.name} is ineligible for scheduling`
    let cpu = 0
    let memoryMB = 0
    const ports = new Set<number>()
    const live = tx.allocsOfNode(nodeId).filter((a) => isLive(a) && !stopping.has(a.id))
    for (const a of [...live, ...placed]) {
      cpu += a.resources.cpu
      memoryMB += a.resources.memoryMB
      for (const p of a.resources.ports) {
        if (ports.has(p.value)) return `port ${p.value} on node ${node.name} would be used twice`
        ports.add(p.value)
      }
    }
    if (cpu > node.resources.cpu) return `node ${node.name} would be overcommitted on cpu (${cpu} > ${node.resources.cpu} MHz)`
    if (memoryMB > node.resources.memoryMB) return `node ${node.name} would be overcommitted on memory (${memoryMB} > ${node.resources.memoryMB} MB)`
  }
  return null
}

type NewAllocLike = Pick<Rows['allocs'], 'resources'>

/** A port published by a service of another running job cannot be published again. */
export function publishConflict(state: { publishedPorts: StateStore['publishedPorts'] }, spec: JobSpec): string | null {
  const taken = new Map(state.publishedPorts().filter((p) => p.jobId !== spec.id).map((p) => [p.port, p]))
  for (const g of spec.groups) {
    for (const s of g.services ?? []) {
      const other = s.publish && taken.get(s.publish.port)
      if (other) return `port ${other.port} is already published by service "${other.service.name}" of job "${other.jobId}"`
    }
  }
  return null
}

/** Appends to the group's scaling history, keeping the last SCALING_EVENTS_KEPT. */
function recordScalingEvent(tx: Tx, index: number, jobId: string, { group, event }: GroupScalingEvent): void {
  const key = scalingKey(jobId, group)
  const prev = tx.get('scalingEvents', key)
  const events = [...(prev?.events ?? []), event].slice(-SCALING_EVENTS_KEPT)
  tx.put('scalingEvents', key, { jobId, group, events, createIndex: prev?.createIndex ?? index, modifyIndex: index })
}

/** A new version of the job, unless the spec is the current one (and the job runs). */
function registerJob(tx: Tx, index: number, spec: JobSpec, time: number): void {
  const prev = tx.get('jobs', spec.id)
  if (prev && !prev.stop && isDeepStrictEqual(specOf(prev), spec)) return
  const version = prev ? prev.version + 1 : 0
  const job: Job = { ...spec, version, stop: false, submitTime: time, createIndex: prev?.createIndex ?? index, modifyIndex: index }
  tx.put('jobs', job.id, job)
  tx.put('jobVersions', jobVersionKey(job.id, version), job)
}

/** Deployments kept per job: the newest ones, plus any still active. */
const DEPLOYMENTS_KEPT_PER_JOB = 10

/** Replaces a deployment row, changed by `change` (on a copy of its groups). */
function updateDeployment(tx: Tx, index: number, time: number, d: Deployment, change: (next: Deployment) => void): void {
  const groups: Record<string, DeploymentGroup> = {}
  for (const [name, g] of Object.entries(d.groups)) groups[name] = { ...g, placedCanaries: [...g.placedCanaries] }
  const next: Deployment = { ...d, groups, modifyIndex: index, modifyTime: time }
  change(next)
  tx.put('deployments', d.id, next)
}

/** An allocation joins its deployment's counts: placed, and healthy/unhealthy if the client decided already. */
function countInDeployment(d: Deployment, a: Pick<Rows['allocs'], 'id' | 'group' | 'deploymentStatus'>, time: number): void {
  const g = d.groups[a.group]
  if (!g) return
  g.placed++
  if (a.deploymentStatus?.canary) g.placedCanaries.push(a.id)
  countHealth(g, a.deploymentStatus?.healthy, time)
}

function countHealth(g: DeploymentGroup, healthy: boolean | undefined, time: number): void {
  if (healthy === true) {
    g.healthy++
    // Progress: the deadline moves on from the latest allocation to become healthy.
    if (g.progressDeadlineMs > 0) g.requireProgressBy = Math.max(g.requireProgressBy ?? 0, time + g.progressDeadlineMs)
  } else if (healthy === false) {
    g.unhealthy++
  }
}

/** A successful deployment makes its job version stable (auto-revert's target). */
function markStable(tx: Tx, d: Deployment): void {
  const key = jobVersionKey(d.jobId, d.jobVersion)
  const version = tx.get('jobVersions', key)
  if (!version || version.createIndex !== d.jobCreateIndex) return
  tx.put('jobVersions', key, { ...version, stable: true })
  const job = tx.get('jobs', d.jobId)
  // Not a change of the spec: the job's modify index (check-and-set) stays.
  if (job && job.version === d.jobVersion && job.createIndex === d.jobCreateIndex) tx.put('jobs', job.id, { ...job, stable: true })
}

/** A job, all its versions, scaling histories and deployments (purge, and the collection of a stopped job). */
function deleteJob(tx: Tx, job: Job): void {
  tx.delete('jobs', job.id)
  const groups = new Set(job.groups.map((g) => g.name))
  for (let v = 0; v <= job.version; v++) {
    for (const g of tx.get('jobVersions', jobVersionKey(job.id, v))?.groups ?? []) groups.add(g.name)
    tx.delete('jobVersions', jobVersionKey(job.id, v))
  }
  for (const g of groups) if (tx.get('scalingEvents', scalingKey(job.id, g))) tx.delete('scalingEvents', scalingKey(job.id, g))
  for (const d of tx.base.deploymentsOfJob(job.id)) tx.delete('deployments', d.id)
}

/** Drops the oldest finished deployments of a job beyond DEPLOYMENTS_KEPT_PER_JOB. */
function pruneDeployments(tx: Tx, state: StateStore, jobId: string): void {
  const all = state.deploymentsOfJob(jobId)
  let kept = 1 // the one this command creates
  for (const d of all) {
    if (isDeploymentActive(tx.get('deployments', d.id) ?? d) || kept < DEPLOYMENTS_KEPT_PER_JOB) kept++
    else tx.delete('deployments', d.id)
  }
}

function dispatch(tx: Tx, index: number, cmd: Command): ApplyResult {
  switch (cmd.type) {
    case 'NodeRegister': {
      const prev = tx.get('nodes', cmd.node.id)
      // Eligibility and drains are the cluster's, not the registering agent's: a
      // restarted agent (or one whose view lags) does not undo them.
      const kept = prev ? { eligible: prev.eligible, ...(prev.drain ? { drain: prev.drain } : {}), ...(prev.lastDrain ? { lastDrain: prev.lastDrain } : {}) } : {}
      const { drain: _drain, lastDrain: _lastDrain, ...registered } = cmd.node
      tx.put('nodes', cmd.node.id, { ...registered, ...kept, createIndex: prev?.createIndex ?? index, modifyIndex: index })
      for (const ev of cmd.evals ?? []) putEval(tx, index, ev)
      return { ok: true, index }
    }
    case 'NodeStatusUpdate': {
      const node = tx.get('nodes', cmd.nodeId)
      if (!node) return fail(index, 'not-found', `node ${cmd.nodeId} not found`)
      tx.put('nodes', node.id, { ...node, status: cmd.status, statusDescription: cmd.description, modifyIndex: index })
      for (const ev of cmd.evals) putEval(tx, index, ev)
      return { ok: true, index }
    }
    case 'NodeEligibility': {
      const node = tx.get('nodes', cmd.nodeId)
      if (!node) return fail(index, 'not-found', `node ${cmd.nodeId} not found`)
      if (cmd.eligible && node.drain) {
        return fail(index, 'conflict', `node ${node.name} is draining; it stays ineligible until the drain ends (node drain --disable)`)
      }
      tx.put('nodes', node.id, { ...node, eligible: cmd.eligible, modifyIndex: index })
      return { ok: true, index }
    }
    case 'NodeDrain': {
      const node = tx.get('nodes', cmd.nodeId)
      if (!node) return fail(index, 'not-found', `node ${cmd.nodeId} not found`)
      tx.put('nodes', node.id, { ...node, drain: cmd.drain, eligible: false, modifyIndex: index })
      return { ok: true, index }
    }
    case 'NodeDrainEnd': {
      const node = tx.get('nodes', cmd.nodeId)
      if (!node) return fail(index, 'not-found', `node ${cmd.nodeId} not found`)
      if (!node.drain) {
        if (cmd.outcome === 'complete') return fail(index, 'conflict', `node ${node.name} is not draining`)
        tx.put('nodes', node.id, { ...node, eligible: cmd.eligible, modifyIndex: index })
        return { ok: true, index }
      }
      const { drain, ...rest } = node
      tx.put('nodes', node.id, {
        ...rest, eligible: cmd.outcome === 'complete' ? false : cmd.eligible,
        lastDrain: { startedAt: drain.startedAt, endedAt: cmd.time, status: cmd.outcome }, modifyIndex: index,
      })
      return { ok: true, index }
    }
    case 'AllocDesiredTransition': {
      for (const t of cmd.transitions) {
        const a = tx.get('allocs', t.allocId)
        // Only allocations still meant to run can move; the others are skipped.
        if (!a || a.desiredStatus !== 'run') continue
        tx.put('allocs', a.id, { ...a, desiredTransition: t.transition, modifyIndex: index, modifyTime: cmd.time })
      }
      for (const ev of cmd.evals) putEval(tx, index, ev)
      return { ok: true, index }
    }
    case 'JobRegister': {
      const prev = tx.get('jobs', cmd.spec.id)
      if (cmd.checkIndex !== undefined && (prev?.modifyIndex ?? 0) !== cmd.checkIndex) {
        const at = prev?.modifyIndex ?? 0
        return fail(index, 'conflict', prev
          ? `job "${cmd.spec.id}" was modified at index ${at}, not ${cmd.checkIndex}`
          : `job "${cmd.spec.id}" does not exist (check index ${cmd.checkIndex} expects it at that index)`, at)
      }
      const taken = publishConflict(tx, cmd.spec)
      if (taken) return fail(index, 'conflict', taken)
      registerJob(tx, index, cmd.spec, cmd.time)
      if (cmd.scalingEvent) {
        const version = tx.get('jobs', cmd.spec.id)!.version
        recordScalingEvent(tx, index, cmd.spec.id, { ...cmd.scalingEvent, event: { ...cmd.scalingEvent.event, jobVersion: version } })
      }
      putEval(tx, index, cmd.eval)
      return { ok: true, index }
    }
    case 'JobDeregister': {
      const job = tx.get('jobs', cmd.jobId)
      if (!job) return fail(index, 'not-found', `job "${cmd.jobId}" not found`)
      if (cmd.purge) {
        deleteJob(tx, job)
      } else if (!job.stop) {
        tx.put('jobs', job.id, { ...job, stop: true, modifyIndex: index })
      }
      putEval(tx, index, cmd.eval)
      return { ok: true, index }
    }
    case 'PlanApply': {
      const ev = tx.get('evals', cmd.evalId)
      if (!ev) return fail(index, 'not-found', `evaluation ${cmd.evalId} not found`)
      const conflict = planConflict(tx, cmd)
      if (conflict) return fail(index, 'conflict', `plan refused: ${conflict}`)
      for (const u of cmd.deploymentUpdates ?? []) {
        const d = tx.get('deployments', u.deploymentId)
        if (d && isDeploymentActive(d)) updateDeployment(tx, index, cmd.time, d, (n) => { n.status = u.status; n.statusDescription = u.statusDescription })
      }
      if (cmd.deployment) {
        pruneDeployments(tx, tx.base, cmd.deployment.jobId)
        tx.put('deployments', cmd.deployment.id, { ...cmd.deployment, createIndex: index, modifyIndex: index })
      }
      const joined = new Map<string, Rows['allocs'][]>()
      const join = (a: Rows['allocs']) => {
        if (a.deploymentId === undefined) return
        const list = joined.get(a.deploymentId) ?? []
        list.push(a)
        joined.set(a.deploymentId, list)
      }
      for (const a of cmd.place) {
        const row = { ...a, createIndex: index, modifyIndex: index }
        tx.put('allocs', a.id, row)
        join(row)
      }
      for (const s of cmd.stop) {
        const a = tx.get('allocs', s.allocId)
        if (!a) continue
        tx.put('allocs', a.id, {
          ...a, desiredStatus: 'stop', desiredDescription: s.description,
          clientStatus: s.lost ? 'lost' : a.clientStatus, modifyIndex: index, modifyTime: cmd.time,
        })
      }
      for (const u of cmd.inPlace ?? []) {
        const a = tx.get('allocs', u.allocId)
        if (!a || a.desiredStatus !== 'run') continue
        const adopted = u.deploymentId !== undefined && u.deploymentId !== a.deploymentId
        const row = { ...a, jobVersion: u.jobVersion, ...(adopted ? { deploymentId: u.deploymentId } : {}), modifyIndex: index, modifyTime: cmd.time }
        tx.put('allocs', a.id, row)
        if (adopted) join(row)
      }
      for (const [id, list] of joined) {
        const d = tx.get('deployments', id)
        if (d && isDeploymentActive(d)) updateDeployment(tx, index, cmd.time, d, (n) => { for (const a of list) countInDeployment(n, a, cmd.time) })
      }
      tx.put('evals', ev.id, { ...ev, ...cmd.evalUpdate, modifyIndex: index })
      for (const e of cmd.newEvals) putEval(tx, index, e)
      return { ok: true, index }
    }
    case 'AllocClientUpdate': {
      for (const u of cmd.updates) {
        const a = tx.get('allocs', u.allocId)
        // A lost alloc stays lost: its node was declared down and it was replaced.
        if (!a || a.clientStatus === 'lost') continue
        // Health is decided once; a canary flag set at placement is kept.
        const decided = u.deploymentStatus !== undefined && a.deploymentStatus?.healthy === undefined
        const health = decided ? { deploymentStatus: { ...a.deploymentStatus, ...u.deploymentStatus! } } : {}
        tx.put('allocs', a.id, {
          ...a, clientStatus: u.clientStatus, clientDescription: u.clientDescription,
          taskStates: u.taskStates, ...health, modifyIndex: index, modifyTime: cmd.time,
          ...(u.serviceHealth !== undefined ? { serviceHealth: u.serviceHealth } : {}),
        })
        const d = decided && a.deploymentId !== undefined ? tx.get('deployments', a.deploymentId) : undefined
        if (d && isDeploymentActive(d) && d.groups[a.group]) {
          updateDeployment(tx, index, cmd.time, d, (n) => countHealth(n.groups[a.group]!, u.deploymentStatus!.healthy, cmd.time))
        }
      }
      for (const ev of cmd.evals) putEval(tx, index, ev)
      return { ok: true, index }
    }
    case 'ScalingEventRecord': {
      const job = tx.get('jobs', cmd.jobId)
      if (!job) return fail(index, 'not-found', `job "${cmd.jobId}" not found`)
      if (!job.groups.some((g) => g.name === cmd.scalingEvent.group)) return fail(index, 'not-found', `job "${cmd.jobId}" has no group "${cmd.scalingEvent.group}"`)
      recordScalingEvent(tx, index, job.id, cmd.scalingEvent)
      return { ok: true, index }
    }
    case 'DeploymentStatusUpdate': {
      const d = tx.get('deployments', cmd.deploymentId)
      if (!d) return fail(index, 'not-found', `deployment ${cmd.deploymentId} not found`)
      if (!isDeploymentActive(d)) return fail(index, 'conflict', `deployment ${cmd.deploymentId} is already ${d.status}${d.statusDescription ? ` (${d.statusDescription})` : ''}`)
      updateDeployment(tx, index, cmd.time, d, (n) => {
        n.status = cmd.status
        n.statusDescription = cmd.statusDescription
        // Resumed: the time it was paused does not count against the progress deadline.
        if (d.status === 'paused' && cmd.status === 'running') {
          for (const g of Object.values(n.groups)) if (g.progressDeadlineMs > 0) g.requireProgressBy = cmd.time + g.progressDeadlineMs
        }
      })
      if (cmd.status === 'successful') markStable(tx, d)
      // A port the reverted version publishes may have been taken by another job since: then no revert.
      if (cmd.revert && !publishConflict(tx, cmd.revert)) registerJob(tx, index, cmd.revert, cmd.time)
      if (cmd.eval) putEval(tx, index, cmd.eval)
      return { ok: true, index }
    }
    case 'DeploymentPromote': {
      const d = tx.get('deployments', cmd.deploymentId)
      if (!d) return fail(index, 'not-found', `deployment ${cmd.deploymentId} not found`)
      if (d.status !== 'running') return fail(index, 'conflict', `deployment ${cmd.deploymentId} is ${d.status}, not running: nothing to promote`)
      const withCanaries = Object.entries(d.groups).filter(([, g]) => g.desiredCanaries > 0).map(([name]) => name)
      if (withCanaries.length === 0) return fail(index, 'invalid', `deployment ${cmd.deploymentId} has no canaries to promote`)
      const names = cmd.groups ?? withCanaries
      for (const name of names) {
        const g = d.groups[name]
        if (!g) return fail(index, 'invalid', `deployment ${cmd.deploymentId} has no group "${name}" (groups: ${Object.keys(d.groups).join(', ')})`)
        if (g.desiredCanaries === 0) return fail(index, 'invalid', `group "${name}" of deployment ${cmd.deploymentId} has no canaries to promote`)
      }
      updateDeployment(tx, index, cmd.time, d, (n) => {
        for (const name of names) {
          const g = n.groups[name]!
          g.promoted = true
          // Waiting for the promotion was no lack of progress: the deadline starts again.
          if (g.progressDeadlineMs > 0) g.requireProgressBy = cmd.time + g.progressDeadlineMs
        }
      })
      putEval(tx, index, cmd.eval)
      return { ok: true, index }
    }
    case 'EvalUpdate': {
      const ev = tx.get('evals', cmd.evalId)
      if (!ev) return fail(index, 'not-found', `evaluation ${cmd.evalId} not found`)
      tx.put('evals', ev.id, { ...ev, status: cmd.status, statusDescription: cmd.statusDescription, modifyTime: cmd.time, modifyIndex: index })
      return { ok: true, index }
    }
    case 'VarPut': {
      const prev = tx.get('vars', cmd.path)
      const conflict = casProblem(index, cmd.path, cmd.cas, prev)
      if (conflict) return conflict
      tx.put('vars', cmd.path, {
        path: cmd.path, value: cmd.value, createIndex: prev?.createIndex ?? index, modifyIndex: index,
        createTime: prev?.createTime ?? cmd.time, modifyTime: cmd.time,
      })
      return { ok: true, index }
    }
    case 'VarDelete': {
      const prev = tx.get('vars', cmd.path)
      const conflict = casProblem(index, cmd.path, cmd.cas, prev)
      if (conflict) return conflict
      if (!prev) return fail(index, 'not-found', `variable "${cmd.path}" not found`)
      tx.delete('vars', cmd.path)
      return { ok: true, index }
    }
    case 'MemberUpsert': {
      const prev = tx.get('members', cmd.member.id)
      tx.put('members', cmd.member.id, { ...cmd.member, createIndex: prev?.createIndex ?? index, modifyIndex: index })
      return { ok: true, index }
    }
    case 'MemberRemove': {
      if (!tx.get('members', cmd.id)) return fail(index, 'not-found', `member ${cmd.id} not found`)
      tx.delete('members', cmd.id)
      return { ok: true, index }
    }
    case 'StateGc': {
      for (const id of cmd.jobs) {
        const job = tx.get('jobs', id)
        if (!job || !isGarbageJob(job, tx.base)) continue
        deleteJob(tx, job)
        for (const a of tx.base.allocsOfJob(id)) tx.delete('allocs', a.id)
        for (const e of tx.base.evalsOfJob(id)) tx.delete('evals', e.id)
      }
      for (const id of cmd.allocs) {
        const a = tx.get('allocs', id)
        if (a && isGarbageAlloc(a)) tx.delete('allocs', id)
      }
      // An evaluation goes only once no allocation it placed is left.
      const placedBy = new Set<string>()
      for (const a of tx.base.list('allocs')) if (tx.get('allocs', a.id)) placedBy.add(a.evalId)
      for (const id of cmd.evals) {
        const e = tx.get('evals', id)
        if (e && isGarbageEval(e) && !placedBy.has(id)) tx.delete('evals', id)
      }
      return { ok: true, index }
    }
    default: {
      // Only reachable with a log entry from a newer or corrupt writer.
      const unknown: { type?: unknown } = cmd
      return fail(index, 'invalid', `unknown command type ${String(unknown.type)}`)
    }
  }
}
