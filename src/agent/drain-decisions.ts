// What the node drainer does next, as a pure function of the state and the
// time: which allocations start migrating (at most each group's
// migrate.max_parallel at once, cluster-wide), which jobs need an evaluation
// (a migration's replacement turned healthy: the scheduler stops the old
// allocation), which drains are complete. The drainer loop (drainer.ts)
// proposes the result.
import type { AllocTransition } from '../fsm/commands.ts'
import { isMigrating, migrationStep } from '../scheduler/migrate.ts'
import type { Allocation, Evaluation, Job, Node } from '../structs/index.ts'
import { isLive, migratePolicy } from '../structs/index.ts'

export interface DrainState {
  nodes(): readonly Node[]
  job(id: string): Job | undefined
  allocsOfJob(jobId: string): Allocation[]
  allocsOfNode(nodeId: string): Allocation[]
  evalsOfJob(jobId: string): Evaluation[]
}

export interface DrainDecisions {
  /** Allocations to mark, in a stable order. */
  migrate: AllocTransition[]
  /** Jobs to evaluate: those of the marked allocations and those with a healthy replacement. */
  evaluate: string[]
  /** Draining nodes with nothing left to move. */
  complete: string[]
  /** The next deadline still ahead, when the drainer must look again even if nothing changes. */
  wakeAt?: number
}

const byAge = (a: Allocation, b: Allocation) => a.createIndex - b.createIndex || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)

/** Allocations the drain still has to deal with: the live ones, but system ones with ignoreSystem. */
function remaining(state: DrainState, node: Node): Allocation[] {
  return state.allocsOfNode(node.id).filter((a) => isLive(a) && !(node.drain!.ignoreSystem && state.job(a.jobId)?.type === 'system'))
}

export function decideDrains(state: DrainState, now: number): DrainDecisions {
  const out: DrainDecisions = { migrate: [], evaluate: [], complete: [] }
  const evaluate = new Set<string>()
  const marked = new Set<string>()
  const mark = (a: Allocation, force: boolean) => {
    out.migrate.push({ allocId: a.id, transition: force ? { migrate: true, force: true } : { migrate: true } })
    marked.add(a.id)
    evaluate.add(a.jobId)
  }
  /** Per `${job}/${group}`: allocations migrating now, cluster-wide, and the group's limit. */
  const inFlight = new Map<string, number>()
  const migratingIn = (job: Job, group: string) => {
    const key = `${job.id}/${group}`
    let n = inFlight.get(key)
    if (n === undefined) {
      n = state.allocsOfJob(job.id).filter((a) => a.group === group && isLive(a) && isMigrating(a)).length
      inFlight.set(key, n)
    }
    return n
  }

  const draining = state.nodes().filter((n) => n.drain).sort((a, b) => (a.id < b.id ? -1 : 1))
  for (const node of draining) {
    const drain = node.drain!
    const left = remaining(state, node).sort(byAge)
    if (left.length === 0) {
      out.complete.push(node.id)
      continue
    }
    if (drain.deadlineAt !== undefined && now >= drain.deadlineAt) {
      for (const a of left) if (!a.desiredTransition?.force) mark(a, true)
      continue
    }
    if (drain.deadlineAt !== undefined) out.wakeAt = Math.min(out.wakeAt ?? Infinity, drain.deadlineAt)
    let othersLeft = false
    for (const a of left) {
      const job = state.job(a.jobId)
      if (!job || job.type === 'system') continue
      othersLeft = true
      // Batch allocations run to completion, or until the deadline.
      if (job.type !== 'service' || a.desiredTransition?.migrate) continue
      const group = job.groups.find((g) => g.name === a.group)
      if (!group) continue
      const moving = migratingIn(job, a.group)
      if (moving >= migratePolicy(group).maxParallel) continue
      mark(a, false)
      inFlight.set(`${job.id}/${a.group}`, moving + 1)
    }
    // System allocations go last: once everything else has left.
    if (!othersLeft) for (const a of left) if (!a.desiredTransition?.migrate) mark(a, false)
  }

  // Migrations whose replacement is healthy: the scheduler stops the old allocation.
  // On every node: a migration started before its drain was canceled still ends.
  for (const node of state.nodes()) {
    for (const a of state.allocsOfNode(node.id)) {
      if (!isMigrating(a) || marked.has(a.id) || evaluate.has(a.jobId)) continue
      const slot = state.allocsOfJob(a.jobId).filter((b) => b.group === a.group && b.index === a.index && b.desiredStatus === 'run')
      if (migrationStep({ index: a.index, allocs: slot }).stop.length === 0) continue
      if (state.evalsOfJob(a.jobId).some((e) => e.status === 'pending' && (e.waitUntil ?? 0) <= now)) continue
      evaluate.add(a.jobId)
    }
  }
  out.evaluate = [...evaluate].sort()
  return out
}
