// `job plan`: what registering a job file would do, computed by running the
// scheduler on the current state with the job as it would be registered.
// Nothing is written: the would-be job and its evaluation live in memory only.
import { isDeepStrictEqual } from 'node:util'
import { schedulerView } from '../agent/leader.ts'
import type { StateStore } from '../fsm/state.ts'
import { validateJob } from '../jobspec/index.ts'
import { checkPublishPorts } from './services.ts'
import { schedule, type DesiredUpdates, type SchedulerState } from '../scheduler/index.ts'
import type { Evaluation, Job, JobSpec, PlacementFailure } from '../structs/index.ts'
import { specOf } from '../structs/index.ts'
import { HttpError, type Request } from './http.ts'

export interface PlannedPlacement {
  name: string
  group: string
  nodeId: string
  nodeName: string
  /** The allocation this one would replace. */
  previousAllocId?: string
  /** The node's rank and its components (binpack, job-anti-affinity, node-affinity, allocation-spread). */
  score: number
  scores: Record<string, number>
}

export interface PlannedStop {
  allocId: string
  name: string
  group: string
  description: string
}

export interface JobPlan {
  jobId: string
  /** "added": a new job; "edited": a new version; "none": the spec equals the registered one (no new version). */
  type: 'added' | 'edited' | 'none'
  /** Version registered now; null for a new job. */
  currentVersion: number | null
  /** Version the job would have after `job run`. */
  version: number
  /** Modify index of the registered job (0 for a new job). */
  jobModifyIndex: number
  /** Per group: create, destroy, inPlaceUpdate, destructiveUpdate and ignore counts. */
  diff: Record<string, DesiredUpdates>
  /** Per group that would not be fully placed: counts per reason and per-node lines. */
  placementFailures: Record<string, PlacementFailure>
  placements: PlannedPlacement[]
  stops: PlannedStop[]
}

/** What registering `spec` would change, like the JobRegister command computes it. */
/** The job plan of `spec` against the state as it is: pure but for reading `state`. */
export function planJob(state: StateStore, spec: JobSpec, now: number): JobPlan {
  const current = state.get('jobs', spec.id)
  const changed = !current || current.stop || !isDeepStrictEqual(specOf(current), spec)
  const index = state.appliedIndex + 1
  const job: Job = current && !changed
    ? current
    : { ...spec, version: current ? current.version + 1 : 0, stop: false, submitTime: now, createIndex: current?.createIndex ?? index, modifyIndex: index }
  const ev: Evaluation = {
    id: 'plan', jobId: spec.id, triggeredBy: 'job-register', status: 'pending', statusDescription: '',
    failedGroups: {}, createTime: now, modifyTime: now, createIndex: index, modifyIndex: index,
  }
  const base = schedulerView(state)
  const view: SchedulerState = { ...base, job: (id) => (id === spec.id ? job : base.job(id)) }
  let n = 0
  const plan = schedule(view, ev, { now, newId: () => `plan-${++n}` })

  const nodeName = (id: string) => state.get('nodes', id)?.name ?? id
  return {
    jobId: spec.id,
    type: !current ? 'added' : changed ? 'edited' : 'none',
    currentVersion: current ? current.version : null,
    version: job.version,
    jobModifyIndex: current?.modifyIndex ?? 0,
    diff: plan.desiredUpdates,
    placementFailures: plan.evalUpdate.failedGroups,
    placements: plan.place.map((a) => ({
      name: a.name, group: a.group, nodeId: a.nodeId, nodeName: nodeName(a.nodeId),
      ...(a.previousAllocId ? { previousAllocId: a.previousAllocId } : {}),
      score: plan.scores[a.id]?.score ?? 0, scores: plan.scores[a.id]?.components ?? {},
    })),
    stops: plan.stop.map((s) => {
      const a = state.get('allocs', s.allocId)
      return { allocId: s.allocId, name: a?.name ?? '', group: a?.group ?? '', description: s.description }
    }),
  }
}

/** POST /v1/job/plan: the job file as the body, validated like POST /v1/jobs. */
export async function planRoute(state: StateStore, req: Request): Promise<JobPlan> {
  const result = validateJob(await req.body())
  if (!result.ok) {
    const first = result.errors[0]!
    throw new HttpError(400, result.errors.map((e) => `${e.field}: ${e.message}`).join('\n'), first.field, result.errors)
  }
  checkPublishPorts(state, result.spec)
  return planJob(state, result.spec, Date.now())
}
