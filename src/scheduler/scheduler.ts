// schedule(): a pure function of (state, evaluation) → plan.
// reconcile (what should run) → feasibility chain → ranking → selection.
import { isDeepStrictEqual } from 'node:util'
import type { AllocStop, AllocVersionUpdate, DeploymentStatusChange, NewAlloc, NewDeployment, NewEval } from '../fsm/commands.ts'
import type { Allocation, Deployment, Evaluation, Job, Node, PlacementFailure, TaskGroup } from '../structs/index.ts'
import { defaultReschedulePolicy, isDeploymentActive, isTerminal } from '../structs/index.ts'
import { limitCanaries, planDeployment, planRollout, type DeploymentPlan } from './deployment.ts'
import { checkNode, type FeasibilityContext } from './feasible.ts'
import { JobAllocTracker } from './job-allocs.ts'
import { assignPorts } from './ports.ts'
import { rankNode, spreadValues, type NodeScore } from './rank.ts'
import { isMigrating, migrationStep, scaleIn, slotsOf } from './migrate.ts'
import { mayReschedule, rescheduleDelay } from './reschedule.ts'
import { groupRules, type GroupRules } from './rules.ts'
import { NodeWalk, rankLimit, type Choice } from './select.ts'
import { UsageTracker, type NodeUsage } from './usage.ts'

export interface SchedulerState {
  /** Every node, in any order (sorted by id spares a sort; a frozen sorted array is checked once). Not modified. */
  nodes(): readonly Node[]
  job(id: string): Job | undefined
  /** A past version of a job (to tell in-place from destructive updates). */
  jobVersion(id: string, version: number): Job | undefined
  allocsOfJob(jobId: string): Allocation[]
  allocsOfNode(nodeId: string): Allocation[]
  evalsOfJob(jobId: string): Evaluation[]
  /**
   * The job's newest deployment. Optional: a state without it has no
   * deployments (every outdated allocation is replaced at once).
   */
  latestDeployment?(jobId: string): Deployment | undefined
  /**
   * Optional: what the live allocations on a node use, kept up to date by the
   * state (else summed from allocsOfNode). Must agree with allocsOfNode.
   */
  nodeUsage?(nodeId: string): NodeUsage | undefined
}

export interface SchedulerContext {
  now: number
  newId(): string
}

/**
 * What the plan does to each group, as `job plan` shows it. Shoal has no
 * in-place updates: a new job version replaces allocations (destructive).
 */
export interface DesiredUpdates {
  /** New allocations wanted (placed or not), including replacements of lost and failed ones. */
  create: number
  /** Allocations stopped without a replacement of a newer version. */
  destroy: number
  inPlaceUpdate: number
  /** Allocations of an older job version stopped and replaced. */
  destructiveUpdate: number
  /** Allocations left as they are. */
  ignore: number
}

export interface Plan {
  evalId: string
  jobId: string
  place: NewAlloc[]
  stop: AllocStop[]
  evalUpdate: Pick<Evaluation, 'status' | 'statusDescription' | 'failedGroups' | 'modifyTime'>
  newEvals: NewEval[]
  /** Allocations moved to the new job version without a restart (only count or placement preferences changed). */
  inPlace: AllocVersionUpdate[]
  /** Per group (also groups removed from the job): what the plan does. Not committed; for `job plan`. */
  desiredUpdates: Record<string, DesiredUpdates>
  /** A deployment for the job's current version (service jobs), created by this plan. */
  deployment?: NewDeployment
  /** Older deployments ended by this plan (superseded, job stopped). */
  deploymentUpdates: DeploymentStatusChange[]
  /** Per placed allocation id: the chosen node's score and its components. Not committed; for `job plan`. */
  scores: Record<string, NodeScore & { nodeName: string }>
}

/** A slot to fill: group and index, and the allocation it replaces, if any. */
interface Placement {
  group: TaskGroup
  index: number
  previous?: Allocation
  rescheduled: boolean
  /** For system jobs: the only node this placement may go to. */
  nodeId?: string
  /** Replaces an allocation of an older job version. */
  update: boolean
  /** A canary of the deployment: beside the allocation in its slot, not replacing it. */
  canary?: boolean
}

type Outcome = 'placed' | 'unplaced' | 'skipped'

/** What placements see: the cluster as the plan leaves it so far. */
interface Trackers {
  usage: UsageTracker
  jobAllocs: JobAllocTracker
}

const MAX_FAILURE_DETAILS = 20

/**
 * Whether moving a running allocation from `before` to `after` needs new
 * tasks: anything that shapes what runs, or where it may run. Count,
 * affinities and spread only steer future placements.
 */
export function needsRestart(before: TaskGroup | undefined, after: TaskGroup): boolean {
  if (!before) return true
  return !isDeepStrictEqual(before.tasks, after.tasks) || !isDeepStrictEqual(before.ports, after.ports) ||
    !isDeepStrictEqual(before.restart, after.restart) || !isDeepStrictEqual(before.constraints ?? [], after.constraints ?? []) ||
    !isDeepStrictEqual(serviceRuntime(before), serviceRuntime(after))
}

/**
 * What of a group's services the running allocation acts on: names, ports and
 * checks (the client runs the checks). Tags and publish settings are read from
 * the job version by the catalog and the mesh, so they change in place.
 */
function serviceRuntime(group: TaskGroup) {
  return (group.services ?? []).map(({ name, port, checks, task }) => ({ name, port, checks, task }))
}

export function schedule(state: SchedulerState, ev: Evaluation, ctx: SchedulerContext): Plan {
  const job = state.job(ev.jobId)
  const allocs = state.allocsOfJob(ev.jobId)
  const nodes = sortedById(state.nodes())
  const nodesById = new SortedNodes(nodes)
  const plan: Plan = {
    evalId: ev.id, jobId: ev.jobId, place: [], stop: [], newEvals: [], inPlace: [],
    evalUpdate: { status: 'complete', statusDescription: '', failedGroups: {}, modifyTime: ctx.now },
    desiredUpdates: {}, scores: {}, deploymentUpdates: [],
  }
  const deployments: DeploymentPlan = state.latestDeployment
    ? planDeployment(job, state.latestDeployment(ev.jobId), ctx.now, ctx.newId)
    : { current: undefined, create: undefined, updates: [] }
  plan.deploymentUpdates = deployments.updates
  if (deployments.create) plan.deployment = deployments.create
  const deployment = deployments.current && isDeploymentActive(deployments.current) ? deployments.current : undefined
  const usage = new UsageTracker((id) => state.allocsOfNode(id), state.nodeUsage ? (id) => state.nodeUsage!(id) : undefined)
  const jobAllocs = new JobAllocTracker(allocs, nodesById)
  const trackers: Trackers = { usage, jobAllocs }
  const updates = (group: string) => (plan.desiredUpdates[group] ??= { create: 0, destroy: 0, inPlaceUpdate: 0, destructiveUpdate: 0, ignore: 0 })
  const stop = (a: Allocation, description: string, lost = false) => {
    plan.stop.push({ allocId: a.id, description, ...(lost ? { lost } : {}) })
    usage.stop(a)
    jobAllocs.stop(a)
  }

  if (!job || job.stop) {
    const why = job ? 'job stopped' : 'job purged'
    for (const a of allocs) if (a.desiredStatus === 'run') stop(a, why)
    plan.evalUpdate.statusDescription = why
    countDestroyed(plan, allocs, new Set(), updates)
    return plan
  }

  const placements: Placement[] = []
  let earliestRetry = Infinity
  const previousGroup = (a: Allocation) => state.jobVersion(job.id, a.jobVersion)?.groups.find((g) => g.name === a.group)
  const groupNames = new Set(job.groups.map((g) => g.name))
  for (const a of allocs) {
    if (a.desiredStatus === 'run' && !groupNames.has(a.group)) stop(a, 'group removed from job')
  }

  const outdated = new Set<string>()
  const isUpdate = (previous: Allocation | undefined) => previous !== undefined && outdated.has(previous.id)
  const rulesOf = new Map<string, GroupRules>(job.groups.map((g) => [g.name, groupRules(job.id, g)]))
  for (const group of job.groups) {
    const rules = rulesOf.get(group.name)!
    updates(group.name)
    const mine = allocs.filter((a) => a.group === group.name && a.desiredStatus === 'run')
    const reschedule = group.reschedule ?? defaultReschedulePolicy(job.type)
    const occupying: Allocation[] = []
    const replaceable: Allocation[] = []
    /** Live allocations of older versions that need new tasks: the rollout decides when. */
    const destructive: Allocation[] = []
    for (const a of mine) {
      const node = nodesById.get(a.nodeId)
      const nodeGone = !node || node.status === 'down'
      if (!isTerminal(a) && nodeGone) {
        stop(a, 'node down: allocation lost', true)
        replaceable.push(a)
      } else if (isMigrating(a) && (a.desiredTransition!.force || job.type === 'system')) {
        // Past the drain deadline, or a system job (its replacement could only go on the same node).
        stop(a, a.desiredTransition!.force ? 'node drain deadline reached' : 'node drained')
        replaceable.push(a)
      } else if (!isTerminal(a) && a.jobVersion !== job.version && !needsRestart(previousGroup(a), group)) {
        occupying.push(a) // moved to the new version in place, unless scaled down below
      } else if (!isTerminal(a) && a.jobVersion !== job.version) {
        destructive.push(a)
      } else if (a.clientStatus === 'failed' && !mayReschedule(reschedule, a, ctx.now)) {
        occupying.push(a) // out of reschedule attempts: it stays failed, holding its slot
      } else if (a.clientStatus === 'failed' || a.clientStatus === 'lost') {
        const due = a.modifyTime + rescheduleDelay(reschedule, a.rescheduleCount)
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

    if (deployments.create) limitCanaries(deployments.create, group.name, destructive.length)
    const rollout = planRollout(group, deployments.current, destructive, occupying)
    for (const a of rollout.replace) {
      stop(a, `updated to job version ${job.version}`)
      outdated.add(a.id)
      replaceable.push(a)
    }
    for (const a of rollout.retire) stop(a, occupying.some((c) => c.index === a.index) ? `replaced by a promoted canary of job version ${job.version}` : 'scaled down')
    // Unpromoted canaries are extra to the count; old allocations waiting their turn keep their slots.
    const canaryIds = new Set(rollout.canaries.map((a) => a.id))
    const waiting = new Set(rollout.wait.map((a) => a.id))
    for (let i = occupying.length - 1; i >= 0; i--) if (canaryIds.has(occupying[i]!.id)) occupying.splice(i, 1)
    occupying.push(...rollout.wait)
    updates(group.name).ignore += rollout.canaries.length

    if (job.type === 'system') {
      const onNode = new Set(occupying.map((a) => a.nodeId))
      for (const node of nodes) {
        if (onNode.has(node.id)) continue
        const r = checkNode(node, { rules, ...trackers })
        if (r?.kind === 'filtered') continue // system jobs skip nodes that can never run them
        const previous = replaceable.find((a) => a.nodeId === node.id)
        placements.push({ group, index: 0, nodeId: node.id, previous, rescheduled: previous?.clientStatus === 'failed', update: isUpdate(previous) })
      }
      updates(group.name).ignore += occupying.length
      continue
    }

    const byIndex = new Map(replaceable.map((a) => [a.index, a]))
    const slots = slotsOf(occupying)
    const dropped = new Set(scaleIn(slots, group.count))
    for (const slot of slots) {
      if (dropped.has(slot)) {
        for (const a of slot.allocs) stop(a, 'scaled down')
        continue
      }
      const step = migrationStep(slot)
      for (const a of step.stop) stop(a, 'migrated: its replacement is healthy')
      if (step.replace) {
        const previous = byIndex.get(slot.index) ?? step.replace
        placements.push({ group, index: slot.index, previous, rescheduled: previous.clientStatus === 'failed', update: false })
      }
      for (const a of slot.allocs) {
        if (step.stop.includes(a)) continue
        if (waiting.has(a.id)) {
          updates(group.name).destructiveUpdate++ // later in the rollout
        } else if (isTerminal(a)) {
          updates(group.name).ignore++
        } else if (a.jobVersion === job.version) {
          // Allocations of this version the deployment did not place (placed before it existed) join it.
          if (deployment && a.deploymentId !== deployment.id) plan.inPlace.push({ allocId: a.id, jobVersion: job.version, deploymentId: deployment.id })
          updates(group.name).ignore++
        } else {
          plan.inPlace.push({ allocId: a.id, jobVersion: job.version, ...(deployment ? { deploymentId: deployment.id } : {}) })
          updates(group.name).inPlaceUpdate++
        }
      }
    }
    const used = new Set(slots.filter((s) => !dropped.has(s)).map((s) => s.index))
    for (let index = 0; used.size < group.count; index++) {
      if (used.has(index)) continue
      used.add(index)
      const previous = byIndex.get(index)
      placements.push({ group, index, previous, rescheduled: previous?.clientStatus === 'failed', update: isUpdate(previous) })
    }
    for (const index of rollout.canaryIndexes) placements.push({ group, index, rescheduled: false, update: true, canary: true })
  }

  const replaced = new Set<string>()
  const walk = new NodeWalk(nodes, ev.id)
  for (const p of placements) {
    const outcome = placeOne(plan, job, p, rulesOf.get(p.group.name)!, walk, nodesById, trackers, ev, ctx, deployment?.id)
    if (outcome === 'skipped') continue
    if (p.previous) replaced.add(p.previous.id)
    updates(p.group.name)[p.update ? 'destructiveUpdate' : 'create']++
  }
  countDestroyed(plan, allocs, replaced, updates)

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

const byId = (a: Node, b: Node) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)

/** Frozen node arrays found sorted by id: they cannot change, so they are checked once. */
const sortedArrays = new WeakSet<readonly Node[]>()

/** The nodes sorted by id; views usually hand them over sorted already, which is checked in one pass. */
function sortedById(nodes: readonly Node[]): readonly Node[] {
  if (sortedArrays.has(nodes)) return nodes
  for (let i = 1; i < nodes.length; i++) if (nodes[i - 1]!.id > nodes[i]!.id) return [...nodes].sort(byId)
  if (Object.isFrozen(nodes)) sortedArrays.add(nodes)
  return nodes
}

/** Lookup by id in the id-sorted nodes (binary search: no map built per evaluation). */
class SortedNodes {
  readonly #nodes: readonly Node[]
  constructor(sorted: readonly Node[]) {
    this.#nodes = sorted
  }

  get(id: string): Node | undefined {
    let lo = 0
    let hi = this.#nodes.length - 1
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1
      const n = this.#nodes[mid]!
      if (n.id === id) return n
      if (n.id < id) lo = mid + 1
      else hi = mid - 1
    }
    return undefined
  }
}

/** Stops not paired with a replacement of this plan are what `job plan` calls destroy. */
function countDestroyed(plan: Plan, allocs: readonly Allocation[], replaced: ReadonlySet<string>, updates: (group: string) => DesiredUpdates): void {
  const groupOf = new Map(allocs.map((a) => [a.id, a.group]))
  for (const s of plan.stop) if (!replaced.has(s.allocId)) updates(groupOf.get(s.allocId)!).destroy++
}

/**
 * Why a placement failed: every candidate node checked in id order, each
 * rejection counted. Only called when nothing fit, so the counts cover the
 * whole cluster however the placement walked it.
 */
function explainFailure(candidates: readonly Node[], check: FeasibilityContext): PlacementFailure {
  const failure: PlacementFailure = { unplaced: 0, nodesEvaluated: 0, filtered: {}, exhausted: {}, details: [] }
  for (const node of candidates) {
    failure.nodesEvaluated++
    const rejection = checkNode(node, check)
    if (!rejection) continue
    const counts = rejection.kind === 'filtered' ? failure.filtered : failure.exhausted
    counts[rejection.reason] = (counts[rejection.reason] ?? 0) + 1
    if (failure.details.length < MAX_FAILURE_DETAILS) failure.details.push(rejection.detail)
  }
  return failure
}

/**
 * Places one allocation: on its own node (system jobs), else on the best of
 * the nodes the walk ranks (select.ts). Placements only add to what nodes use
 * and to the job's counts per property, so feasibility only shrinks during the
 * placement phase: once no node fits a group, none fits its later placements
 * either, and they are counted unplaced without another walk.
 */
function placeOne(
  plan: Plan, job: Job, p: Placement, rules: GroupRules, walk: NodeWalk, nodesById: SortedNodes,
  trackers: Trackers, ev: Evaluation, ctx: SchedulerContext, deploymentId: string | undefined,
): Outcome {
  const need = rules.need
  const id = ctx.newId()
  const check: FeasibilityContext = { rules, ...trackers }
  let best: Choice | null = null
  let candidates: readonly Node[]
  if (p.nodeId !== undefined) {
    const node = nodesById.get(p.nodeId)!
    candidates = [node]
    const rejection = checkNode(node, check)
    // A system job only wants nodes that can run it: a node filtered out is no failure.
    if (rejection?.kind === 'filtered') return 'skipped'
    if (!rejection) best = { node, score: rankNode(node, { ...check, need, spreadValues: spreadValues(rules.spreads, [node]) }), index: 0 }
  } else {
    candidates = walk.nodes
    if (!walk.noFit.has(rules)) best = walk.select(check, need, rankLimit(job.type, rules, walk.nodes.length))
  }
  const ports = best && assignPorts(best.node, p.group.ports, trackers.usage.usage(best.node).ports, id)
  if (!best || !ports) {
    const prev = plan.evalUpdate.failedGroups[p.group.name]
    if (prev) {
      plan.evalUpdate.failedGroups[p.group.name] = { ...prev, unplaced: prev.unplaced + 1 }
      return 'unplaced'
    }
    const failure = explainFailure(candidates, check)
    if (best) {
      failure.exhausted['dynamic ports'] = (failure.exhausted['dynamic ports'] ?? 0) + 1
      failure.details.push(`node ${best.node.name}: dynamic port range exhausted`)
    }
    plan.evalUpdate.failedGroups[p.group.name] = { ...failure, unplaced: 1 }
    return 'unplaced'
  }
  const alloc: NewAlloc = {
    id, name: `${job.id}.${p.group.name}[${p.index}]`, jobId: job.id, jobVersion: job.version,
    group: p.group.name, index: p.index, nodeId: best.node.id, evalId: ev.id,
    desiredStatus: 'run', desiredDescription: '', clientStatus: 'pending', clientDescription: '',
    taskStates: {}, resources: { ...need, ports },
    rescheduleCount: p.previous ? p.previous.rescheduleCount + (p.rescheduled ? 1 : 0) : 0,
    ...(p.previous ? { previousAllocId: p.previous.id } : {}),
    ...(deploymentId !== undefined ? { deploymentId } : {}),
    ...(p.canary ? { deploymentStatus: { canary: true, timestamp: ctx.now } } : {}),
    ...(p.previous && p.rescheduled ? { rescheduleHistory: [...(p.previous.rescheduleHistory ?? []), ctx.now].slice(-32) } : {}),
    createTime: ctx.now, modifyTime: ctx.now,
  }
  trackers.usage.place(best.node, alloc)
  trackers.jobAllocs.place(best.node, alloc)
  plan.place.push(alloc)
  plan.scores[id] = { ...best.score, nodeName: best.node.name }
  return 'placed'
}
