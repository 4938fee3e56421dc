// Rolling updates, as Nomad's deployments (pure; schedule() calls in here).
//
// Every version of a service job is rolled out by one deployment, created by
// the first plan that sees the version. While it is active, a group's outdated
// allocations (those whose new version needs new tasks) are replaced at most
// `max_parallel` at a time: the next ones only once the replacements placed so
// far are healthy (the client decides, alloc-health.ts). With `canary` N, N
// new-version allocations are placed beside the old ones first and nothing old
// stops until they are promoted; then each old allocation whose slot a canary
// holds is stopped and the rest roll. A paused, failed or cancelled deployment
// replaces nothing more (auto-revert registers a new version instead).
import type { DeploymentStatusChange, NewDeployment } from '../fsm/commands.ts'
import type { Allocation, Deployment, DeploymentGroup, Job, TaskGroup } from '../structs/index.ts'
import { isDeploymentActive, isTerminal, updateStrategyOf } from '../structs/index.ts'

/** The deployment of the version being scheduled, and what the plan does to deployments. */
export interface DeploymentPlan {
  /** The current version's deployment: committed already, or created by this plan (`create`). */
  current: Deployment | NewDeployment | undefined
  /** Set when this plan creates `current`. */
  create: NewDeployment | undefined
  /** Older active deployments this plan ends. */
  updates: DeploymentStatusChange[]
}

/**
 * Which deployment the plan works under. A service job's version gets one when
 * the first plan sees it; an active deployment of an older version is
 * superseded; a stopped job's is cancelled.
 */
export function planDeployment(job: Job | undefined, latest: Deployment | undefined, now: number, newId: () => string): DeploymentPlan {
  const plan: DeploymentPlan = { current: undefined, create: undefined, updates: [] }
  const ofThisVersion = latest !== undefined && job !== undefined && latest.jobVersion === job.version && latest.jobCreateIndex === job.createIndex
  if (latest && isDeploymentActive(latest) && (!job || job.stop || !ofThisVersion)) {
    const statusDescription = !job ? 'job purged' : job.stop ? 'job stopped' : `superseded by job version ${job.version}`
    plan.updates.push({ deploymentId: latest.id, status: 'cancelled', statusDescription })
  }
  if (!job || job.stop || job.type !== 'service') return plan
  if (ofThisVersion) {
    plan.current = latest
    return plan
  }
  const groups: Record<string, DeploymentGroup> = {}
  for (const g of job.groups) {
    const u = updateStrategyOf(g)
    groups[g.name] = {
      desiredTotal: g.count, desiredCanaries: u.canary, placedCanaries: [], promoted: false,
      autoRevert: u.autoRevert, autoPromote: u.autoPromote, progressDeadlineMs: u.progressDeadlineMs,
      placed: 0, healthy: 0, unhealthy: 0,
      ...(u.progressDeadlineMs > 0 ? { requireProgressBy: now + u.progressDeadlineMs } : {}),
    }
  }
  plan.create = {
    id: newId(), jobId: job.id, jobVersion: job.version, jobCreateIndex: job.createIndex,
    status: 'running', statusDescription: 'Deployment is running', groups, createTime: now, modifyTime: now,
  }
  plan.current = plan.create
  return plan
}

/** What a group does with its outdated allocations in this plan. */
export interface Rollout {
  /** Stop and replace now (same slot index). */
  replace: Allocation[]
  /** Stop without a replacement: a promoted canary holds the slot, or the group was scaled down. */
  retire: Allocation[]
  /** Keep running on the old version for now. */
  wait: Allocation[]
  /** Slot indexes to place new canaries at (beside the old allocations there). */
  canaryIndexes: number[]
  /** Canaries placed earlier and not promoted: extra to the count, left alone. */
  canaries: Allocation[]
}

const byIndex = (a: Allocation, b: Allocation) => a.index - b.index

/**
 * The rollout of one group: `outdated` are its live allocations of older
 * versions that need new tasks; `current` its live allocations of the
 * version being scheduled (not stopped by this plan).
 */
export function planRollout(group: TaskGroup, deployment: Deployment | NewDeployment | undefined, outdated: readonly Allocation[], current: readonly Allocation[]): Rollout {
  const sorted = [...outdated].sort(byIndex)
  const rollout: Rollout = { replace: [], retire: [], wait: [], canaryIndexes: [], canaries: [] }
  const state = deployment?.groups[group.name]
  if (!deployment || !state) {
    rollout.replace = sorted // no deployment (batch, system): replace everything at once
    return rollout
  }
  if (deployment.status !== 'running') {
    rollout.wait = sorted
    return rollout
  }
  const mine = current.filter((a) => a.deploymentId === deployment.id && !isTerminal(a))
  const canaries = mine.filter((a) => a.deploymentStatus?.canary === true)
  const awaiting = state.desiredCanaries > 0 && !state.promoted
  // Old allocations beyond what the count leaves them (scaled down) stop without a replacement, highest slots first.
  const canarySlots = awaiting ? new Set<number>() : new Set(canaries.map((a) => a.index))
  const holding = current.length - (awaiting ? canaries.length : 0)
  let room = Math.max(0, group.count - holding)
  const rolling: Allocation[] = []
  for (const a of sorted) {
    if (canarySlots.has(a.index) || room === 0) rollout.retire.push(a)
    else {
      rolling.push(a)
      room--
    }
  }
  if (awaiting) {
    rollout.canaries = canaries
    rollout.wait = rolling
    const taken = new Set(canaries.map((a) => a.index))
    const free = rolling.map((a) => a.index).filter((i) => !taken.has(i))
    rollout.canaryIndexes = free.slice(0, Math.max(0, state.desiredCanaries - canaries.length))
    return rollout
  }
  // Replacements not yet healthy (starting, or unhealthy: the deployment is about to fail) hold the next batch back.
  const inFlight = mine.filter((a) => a.deploymentStatus?.healthy !== true).length
  let limit = Math.max(0, updateStrategyOf(group).maxParallel - inFlight)
  for (const a of rolling) {
    if (limit > 0) {
      rollout.replace.push(a)
      limit--
    } else rollout.wait.push(a)
  }
  return rollout
}

/**
 * A canary pairs with an old allocation whose slot it takes at promotion: a
 * group with nothing to replace wants none (as Nomad, canaries are only for
 * destructive updates), and never more than it has old allocations.
 */
export function limitCanaries(d: NewDeployment, group: string, outdated: number): void {
  const g = d.groups[group]
  if (g) g.desiredCanaries = Math.min(g.desiredCanaries, outdated)
}
