// apply(): the deterministic transition function of the cluster state.
// Same state + same command → same changes, on every member, every time.
import { isDeepStrictEqual } from 'node:util'
import type { Job, JobSpec } from '../structs/index.ts'
import { isLive, SCALING_EVENTS_KEPT, scalingKey, specOf } from '../structs/index.ts'
import type { ApplyResult, Command, GroupScalingEvent, NewEval } from './commands.ts'
import { jobVersionKey, type Change, type Rows, type StateReader, type StateStore, type TableName } from './state.ts'

/** A write-buffering view over the store; reads see the transaction's own writes. */
class Tx implements StateReader {
  readonly #base: StateStore
  readonly #writes = new Map<string, Change>()

  constructor(base: StateStore) {
    this.#base = base
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

function dispatch(tx: Tx, index: number, cmd: Command): ApplyResult {
  switch (cmd.type) {
    case 'NodeRegister': {
      const prev = tx.get('nodes', cmd.node.id)
      tx.put('nodes', cmd.node.id, { ...cmd.node, createIndex: prev?.createIndex ?? index, modifyIndex: index })
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
      const unchanged = prev && !prev.stop && isDeepStrictEqual(specOf(prev), cmd.spec)
      if (!unchanged) {
        const version = prev ? prev.version + 1 : 0
        const job: Job = {
          ...cmd.spec, version, stop: false, submitTime: cmd.time,
          createIndex: prev?.createIndex ?? index, modifyIndex: index,
        }
        tx.put('jobs', job.id, job)
        tx.put('jobVersions', jobVersionKey(job.id, version), job)
      }
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
        tx.delete('jobs', job.id)
        const groups = new Set(job.groups.map((g) => g.name))
        for (let v = 0; v <= job.version; v++) {
          for (const g of tx.get('jobVersions', jobVersionKey(job.id, v))?.groups ?? []) groups.add(g.name)
          tx.delete('jobVersions', jobVersionKey(job.id, v))
        }
        for (const g of groups) if (tx.get('scalingEvents', scalingKey(job.id, g))) tx.delete('scalingEvents', scalingKey(job.id, g))
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
      for (const a of cmd.place) tx.put('allocs', a.id, { ...a, createIndex: index, modifyIndex: index })
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
        if (a && a.desiredStatus === 'run') tx.put('allocs', a.id, { ...a, jobVersion: u.jobVersion, modifyIndex: index, modifyTime: cmd.time })
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
        const decided = a.deploymentStatus?.healthy !== undefined
        const health = u.deploymentStatus && !decided ? { deploymentStatus: { ...a.deploymentStatus, ...u.deploymentStatus } } : {}
        tx.put('allocs', a.id, {
          ...a, clientStatus: u.clientStatus, clientDescription: u.clientDescription,
          taskStates: u.taskStates, ...health, modifyIndex: index, modifyTime: cmd.time,
          ...(u.serviceHealth !== undefined ? { serviceHealth: u.serviceHealth } : {}),
        })
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
    default: {
      // Only reachable with a log entry from a newer or corrupt writer.
      const unknown: { type?: unknown } = cmd
      return fail(index, 'invalid', `unknown command type ${String(unknown.type)}`)
    }
  }
}
