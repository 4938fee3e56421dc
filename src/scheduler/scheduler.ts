// schedule(): a pure function of (state, evaluation) → plan.
// reconcile (what should run) → feasibility chain → ranking → selection.
import type { AllocStop, NewAlloc, NewEval } from '../fsm/commands.ts'
import type { Allocation, Evaluation, Job, Node, PlacementFailure, TaskGroup } from '../structs/index.ts'
import { groupResources, isTerminal } from '../structs/index.ts'
import { checkNode } from './feasible.ts'
import { assignPorts } from './ports.ts'
import { rankNode } from './rank.ts'
import { rescheduleDelay } from './reschedule.ts'
import { UsageTracker } from './usage.ts'

export interface SchedulerState {
  nodes(): Node[]
  job(id: string): Job | undefined
  allocsOfJob(jobId: string): Allocation[]
  allocsOfNode(nodeId: string): Allocation[]
  evalsOfJob(jobId: string): Evaluation[]
}

export interface SchedulerContext {
  now: number
  newId(): string
}

export interface Plan {
  evalId: string
  jobId: string
  place: NewAlloc[]
  stop: AllocStop[]
  evalUpdate: Pick<Evaluation, 'status' | 'statusDescription' | 'failedGroups' | 'modifyTime'>
  newEvals: NewEval[]
}

/** A slot to fill: group and index, and the allocation it replaces, if any. */
interface Placement {
  group: TaskGroup
  index: number
  previous?: Allocation
  rescheduled: boolean
  /** For system jobs: the only node this placement may go to. */
  nodeId?: string
}

const MAX_FAILURE_DETAILS = 20

export function schedule(state: SchedulerState, ev: Evaluation, ctx: SchedulerContext): Plan {
  const job = state.job(ev.jobId)
  const allocs = state.allocsOfJob(ev.jobId)
  const nodes = state.nodes().sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
  const nodesById = new Map(nodes.map((n) => [n.id, n]))
  const plan: Plan = {
    evalId: ev.id, jobId: ev.jobId, place: [], stop: [], newEvals: [],
    evalUpdate: { status: 'complete', statusDescription: '', failedGroups: {}, modifyTime: ctx.now },
  }
  const usage = new UsageTracker((id) => state.allocsOfNode(id))
  const stop = (a: Allocation, description: string, lost = false) => {
    plan.stop.push({ allocId: a.id, description, ...(lost ? { lost } : {}) })
    usage.stop(a)
  }

  if (!job || job.stop) {
    const why = job ? 'job stopped' : 'job purged'
    for (const a of allocs) if (a.desiredStatus === 'run') stop(a, why)
    plan.evalUpdate.statusDescription = why
    return plan
  }

  const placements: Placement[] = []
  let earliestRetry = Infinity
  const groupNames = new Set(job.groups.map((g) => g.name))
  for (const a of allocs) {
    if (a.desiredStatus === 'run' && !groupNames.has(a.group)) stop(a, 'group removed from job')
  }

  for (const group of job.groups) {
    const mine = allocs.filter((a) => a.group === group.name && a.desiredStatus === 'run')
    const occupying: Allocation[] = []
    const replaceable: Allocation[] = []
    for (const a of mine) {
      const node = nodesById.get(a.nodeId)
      const nodeGone = !node || node.status === 'down'
      if (!isTerminal(a) && nodeGone) {
        stop(a, 'node down: allocation lost', true)
        replaceable.push(a)
      } else if (!isTerminal(a) && a.jobVersion !== job.version) {
        stop(a, `updated to job version ${job.version}`)
        replaceable.push(a)
      } else if (a.clientStatus === 'failed' || a.clientStatus === 'lost') {
        const due = a.modifyTime + rescheduleDelay(a.rescheduleCount)
        if (due <= ctx.now || a.clientStatus === 'lost') {
          stop(a, 'rescheduled after failure')
          replaceable.push(a)
        } else {
          occupying.push(a)
          earliestRetry = Math.min(earliestRetry, due)
        }
      } else if (a.clientStatus === 'complete' && job.type !== 'batch') {
        stop(a, 'completed service allocation replaced')
        replaceable.push(a)
      } else {
        occupying.push(a)
      }
    }

    if (job.type === 'system') {
      const onNode = new Set(occupying.map((a) => a.nodeId))
      for (const node of nodes) {
        if (onNode.has(node.id)) continue
        const r = checkNode(node, group, usage)
        if (r?.kind === 'filtered') continue // system jobs skip nodes that can never run them
        const previous = replaceable.find((a) => a.nodeId === node.id)
        placements.push({ group, index: 0, nodeId: node.id, previous, rescheduled: previous?.clientStatus === 'failed' })
      }
      continue
    }

    // Scale down: stop the highest indexes beyond count.
    occupying.sort((a, b) => a.index - b.index)
    while (occupying.length > group.count) stop(occupying.pop()!, 'scaled down')
    const used = new Set(occupying.map((a) => a.index))
    const byIndex = new Map(replaceable.map((a) => [a.index, a]))
    for (let index = 0; used.size < group.count; index++) {
      if (used.has(index)) continue
      used.add(index)
      const previous = byIndex.get(index)
      placements.push({ group, index, previous, rescheduled: previous?.clientStatus === 'failed' })
    }
  }

  for (const p of placements) placeOne(plan, job, p, p.nodeId ? [nodesById.get(p.nodeId)!] : nodes, usage, ev, ctx)

  const unplaced = Object.values(plan.evalUpdate.failedGroups).reduce((n, f) => n + f.unplaced, 0)
  if (unplaced > 0) {
    plan.evalUpdate.status = 'blocked'
    plan.evalUpdate.statusDescription = `${unplaced} allocation(s) could not be placed`
  }
  if (earliestRetry < Infinity) {
    const alreadyWaiting = state.evalsOfJob(job.id).some((e) => e.status === 'pending' && e.id !== ev.id && (e.waitUntil ?? 0) <= earliestRetry)
    if (!alreadyWaiting) {
      plan.newEvals.push({
        id: ctx.newId(), jobId: job.id, triggeredBy: 'retry', status: 'pending', waitUntil: earliestRetry,
        statusDescription: 'delayed reschedule of failed allocations', failedGroups: {}, createTime: ctx.now, modifyTime: ctx.now,
      })
    }
  }
  return plan
}

function placeOne(plan: Plan, job: Job, p: Placement, candidates: Node[], usage: UsageTracker, ev: Evaluation, ctx: SchedulerContext): void {
  const need = groupResources(p.group)
  const id = ctx.newId()
  let best: { node: Node; score: number } | null = null
  const failure: PlacementFailure = { unplaced: 0, nodesEvaluated: 0, filtered: {}, exhausted: {}, details: [] }
  for (const node of candidates) {
    failure.nodesEvaluated++
    const rejection = checkNode(node, p.group, usage)
    if (rejection) {
      const counts = rejection.kind === 'filtered' ? failure.filtered : failure.exhausted
      counts[rejection.reason] = (counts[rejection.reason] ?? 0) + 1
      if (failure.details.length < MAX_FAILURE_DETAILS) failure.details.push(rejection.detail)
      continue
    }
    const score = rankNode(node, job.id, p.group.name, need, usage)
    if (!best || score > best.score) best = { node, score }
  }
  const ports = best && assignPorts(best.node, p.group.ports, usage.usage(best.node).ports, id)
  if (best && !ports) {
    failure.exhausted['dynamic ports'] = (failure.exhausted['dynamic ports'] ?? 0) + 1
    failure.details.push(`node ${best.node.name}: dynamic port range exhausted`)
  }
  if (!best || !ports) {
    const prev = plan.evalUpdate.failedGroups[p.group.name]
    plan.evalUpdate.failedGroups[p.group.name] = prev ? { ...prev, unplaced: prev.unplaced + 1 } : { ...failure, unplaced: 1 }
    return
  }
  const alloc: NewAlloc = {
    id, name: `${job.id}.${p.group.name}[${p.index}]`, jobId: job.id, jobVersion: job.version,
    group: p.group.name, index: p.index, nodeId: best.node.id, evalId: ev.id,
    desiredStatus: 'run', desiredDescription: '', clientStatus: 'pending', clientDescription: '',
    taskStates: {}, resources: { ...need, ports },
    rescheduleCount: p.previous ? p.previous.rescheduleCount + (p.rescheduled ? 1 : 0) : 0,
    ...(p.previous ? { previousAllocId: p.previous.id } : {}),
    createTime: ctx.now, modifyTime: ctx.now,
  }
  usage.place(best.node, alloc)
  plan.place.push(alloc)
}
