// Garbage collection of the state, as Nomad's core scheduler does it
// (eval_gc_threshold, job_gc_threshold, `nomad system gc`): finished
// evaluations, allocations and stopped jobs would otherwise stay in the state,
// in every snapshot and in every member's memory, for ever.
//
// The leader picks what to collect (collectable(): a pure function of the state
// and a cutoff time) and proposes a StateGc command; apply() deletes only what
// is still collectable when the command applies (isGarbage* below), whatever
// happened in between.
import type { Allocation, Evaluation, Job } from '../structs/index.ts'
import { isTerminal } from '../structs/index.ts'
import type { StateStore } from './state.ts'

/** How long finished things are kept before the periodic collection removes them (Nomad: 1 h for evaluations, 4 h for jobs). */
export const GC_THRESHOLD_MS = 60 * 60_000
/** How often the leader collects (Nomad: 5 min). */
export const GC_INTERVAL_MS = 5 * 60_000

export interface GcTargets {
  evals: string[]
  allocs: string[]
  jobs: string[]
}

/**
 * An allocation nothing needs any more: the servers stopped it and its node
 * finished it. A failed allocation that still should run (out of reschedule
 * attempts, or waiting for its replacement) is kept: it holds its slot.
 */
export function isGarbageAlloc(a: Allocation): boolean {
  return a.desiredStatus !== 'run' && isTerminal(a)
}

/** An evaluation that is done: complete or failed (pending and blocked ones are work still to do). */
export function isGarbageEval(e: Evaluation): boolean {
  return e.status === 'complete' || e.status === 'failed'
}

/** A stopped (not purged) job whose evaluations and allocations are all done. */
export function isGarbageJob(job: Job, state: Pick<StateStore, 'allocsOfJob' | 'evalsOfJob'>): boolean {
  return job.stop && state.allocsOfJob(job.id).every(isGarbageAlloc) && state.evalsOfJob(job.id).every(isGarbageEval)
}

/**
 * What a collection at `cutoff` (a time: older than it counts) removes:
 * finished evaluations whose allocations are all garbage, garbage
 * allocations, and stopped jobs whose last change is older than the cutoff
 * (with all their evaluations and allocations).
 */
export function collectable(state: StateStore, cutoff: number): GcTargets {
  const allAllocs = state.list('allocs')
  const allocsByEval = new Map<string, Allocation[]>()
  for (const a of allAllocs) {
    const list = allocsByEval.get(a.evalId)
    if (list) list.push(a)
    else allocsByEval.set(a.evalId, [a])
  }
  const old = (x: { modifyTime: number }) => x.modifyTime <= cutoff
  const jobs = state.list('jobs').filter((j) => isGarbageJob(j, state) &&
    state.allocsOfJob(j.id).every(old) && state.evalsOfJob(j.id).every(old))
  const collectedJobs = new Set(jobs.map((j) => j.id))
  const allocs = allAllocs.filter((a) => isGarbageAlloc(a) && (old(a) || collectedJobs.has(a.jobId)))
  const collectedAllocs = new Set(allocs.map((a) => a.id))
  const evals = state.list('evals').filter((e) => isGarbageEval(e) && (old(e) || collectedJobs.has(e.jobId)) &&
    (allocsByEval.get(e.id) ?? []).every((a) => collectedAllocs.has(a.id)))
  return { evals: evals.map((e) => e.id), allocs: [...collectedAllocs], jobs: [...collectedJobs] }
}
