// Shapes the API answers with, derived from the state (never stored).
import { jobVersionKey, type StateStore } from '../fsm/state.ts'
import type { Allocation, ClientStatus, Deployment, Evaluation, Job, JobStatus, ScalingEvent, TaskGroup } from '../structs/index.ts'
import { isLive, scalingKey } from '../structs/index.ts'

export type GroupSummary = Record<ClientStatus, number>

export function jobStatus(job: Job, allocs: readonly Allocation[]): JobStatus {
  const live = allocs.filter(isLive)
  if (live.some((a) => a.clientStatus === 'running')) return 'running'
  if (live.length > 0) return 'pending'
  if (job.stop || job.type === 'batch') return 'dead'
  return 'pending'
}

export function jobSummary(job: Job, allocs: readonly Allocation[]): Record<string, GroupSummary> {
  const out: Record<string, GroupSummary> = {}
  for (const g of job.groups) out[g.name] = { pending: 0, running: 0, complete: 0, failed: 0, lost: 0 }
  for (const a of allocs) {
    const s = out[a.group]
    // Only allocations of the current version, or still live, describe the job now.
    if (s && (a.desiredStatus === 'run' || isLive(a))) s[a.clientStatus]++
  }
  return out
}

export function allocStub(state: StateStore, a: Allocation) {
  return {
    id: a.id, name: a.name, jobId: a.jobId, jobVersion: a.jobVersion, group: a.group, index: a.index, evalId: a.evalId,
    nodeId: a.nodeId, nodeName: state.get('nodes', a.nodeId)?.name ?? '',
    desiredStatus: a.desiredStatus, desiredDescription: a.desiredDescription,
    clientStatus: a.clientStatus, clientDescription: a.clientDescription,
    ...(a.desiredTransition ? { desiredTransition: a.desiredTransition } : {}),
    ports: a.resources.ports, createTime: a.createTime, modifyTime: a.modifyTime,
  }
}

export function allocDetail(state: StateStore, a: Allocation) {
  return { ...a, nodeName: state.get('nodes', a.nodeId)?.name ?? '' }
}

/** The newest evaluation of a job; its failedGroups explain what is not placed. */
export function latestEval(state: StateStore, jobId: string): Evaluation | undefined {
  let latest: Evaluation | undefined
  for (const e of state.list('evals')) {
    if (e.jobId === jobId && e.triggeredBy !== 'retry' && (!latest || e.createIndex > latest.createIndex)) latest = e
  }
  return latest
}

export function jobListItem(state: StateStore, job: Job) {
  const allocs = state.allocsOfJob(job.id)
  return {
    id: job.id, type: job.type, priority: job.priority, version: job.version, stop: job.stop,
    status: jobStatus(job, allocs), submitTime: job.submitTime, summary: jobSummary(job, allocs),
    modifyIndex: job.modifyIndex,
  }
}

export function jobDetail(state: StateStore, job: Job) {
  const allocs = state.allocsOfJob(job.id).sort((a, b) => a.createIndex - b.createIndex || a.index - b.index)
  const ev = latestEval(state, job.id)
  return {
    ...jobListItem(state, job),
    job,
    allocations: allocs.map((a) => allocStub(state, a)),
    latestEval: ev ? { id: ev.id, status: ev.status, statusDescription: ev.statusDescription, triggeredBy: ev.triggeredBy } : null,
    placementFailures: ev?.status === 'blocked' ? ev.failedGroups : {},
    scaling: scalingView(state, job),
    latestDeployment: latestDeploymentView(state, job),
  }
}

/** Per group with a scaling block or a recorded decision: its bounds and policy, and the last decisions (newest last). */
export function scalingView(state: StateStore, job: Job) {
  const out: Record<string, { count: number; policy: TaskGroup['scaling'] | null; events: ScalingEvent[] }> = {}
  for (const g of job.groups) {
    const events = state.get('scalingEvents', scalingKey(job.id, g.name))?.events ?? []
    if (g.scaling || events.length > 0) out[g.name] = { count: g.count, policy: g.scaling ?? null, events }
  }
  return out
}

/** The job's newest deployment, for `job status`; null when it has none. */
function latestDeploymentView(state: StateStore, job: Job) {
  const d = state.latestDeployment(job.id)
  return d ? deploymentView(state, d) : null
}

/** A deployment as the API shows it: the stored row plus the job's stability of that version. */
export function deploymentView(state: StateStore, d: Deployment) {
  return { ...d, jobStable: state.get('jobVersions', jobVersionKey(d.jobId, d.jobVersion))?.stable === true }
}

/** A deployment with the allocations it placed or adopted. */
export function deploymentDetail(state: StateStore, d: Deployment) {
  const allocs = state.allocsOfJob(d.jobId).filter((a) => a.deploymentId === d.id).sort((a, b) => a.createIndex - b.createIndex || a.index - b.index)
  return {
    ...deploymentView(state, d),
    allocations: allocs.map((a) => ({ ...allocStub(state, a), healthy: a.deploymentStatus?.healthy ?? null, canary: a.deploymentStatus?.canary === true })),
  }
}
