// Ranking, as Nomad does it: each component scores a feasible node on its own
// scale (normalised to about -1..1), and the node's score is the mean of the
// components that apply to it. Bin-packing always applies (fill nodes up
// before using empty ones, so big jobs still fit somewhere); the others only
// when there is something to say.
import type { Node, Resources, Spread } from '../structs/index.ts'
import { resolveText } from './constraints.ts'
import type { JobAllocTracker } from './job-allocs.ts'
import type { GroupRules } from './rules.ts'
import type { UsageTracker } from './usage.ts'

export interface RankContext {
  rules: GroupRules
  usage: UsageTracker
  jobAllocs: JobAllocTracker
  /** What the group needs per allocation. */
  need: Resources
  /** Per spread of the group: the values of its attribute among the nodes feasible for this placement. */
  spreadValues: readonly ReadonlySet<string>[]
}

/** A component's score for a node, or null when it has nothing to say about it. */
export type RankComponent = (node: Node, ctx: RankContext) => number | null

export interface NodeScore {
  score: number
  /** Component name → its score, for the components that applied. */
  components: Record<string, number>
}

/** How full the node would be with this allocation: 0 empty … 1 full. */
export function binPackScore(node: Node, need: Resources, usage: UsageTracker): number {
  const u = usage.usage(node)
  const cpuUsed = 1 - (node.resources.cpu - u.cpu - need.cpu) / node.resources.cpu
  const memUsed = 1 - (node.resources.memoryMB - u.memoryMB - need.memoryMB) / node.resources.memoryMB
  return (cpuUsed + memUsed) / 2
}

export const binPack: RankComponent = (node, { need, usage }) => binPackScore(node, need, usage)

/**
 * Allocations of the same group already on the node: Nomad's penalty
 * -(collisions + 1) / count, and 0 without collisions. (Nomad leaves the
 * component out then; counting it for every node keeps one denominator for
 * all the nodes a placement compares, so the other components keep their
 * relative strength.)
 */
export const jobAntiAffinity: RankComponent = (node, { rules, usage }) => {
  const collisions = usage.usage(node).jobGroups.get(rules.key) ?? 0
  return collisions <= 0 ? 0 : -(collisions + 1) / Math.max(1, rules.group.count)
}

/** Mean over the group's affinities of weight/100 for each one the node matches (0 for the others). */
export const nodeAffinity: RankComponent = (node, { rules }) => {
  const affinities = rules.affinities
  if (affinities.length === 0) return null
  let sum = 0
  for (const a of affinities) if (a.test(node).ok) sum += a.weight / 100
  return sum / affinities.length
}

/**
 * How much the node's value of one spread attribute still lacks allocations:
 * (desired - (used + ½)) / desired, clamped to -1..1, where desired is the
 * value's share of the group's count: its target percent; without a target,
 * the percent left over by the targets shared among the other values seen; or
 * with no targets at all, an even share of the values seen. A node without
 * the attribute, or whose value should get nothing, scores -1.
 */
export function spreadBoost(spread: Spread, seen: ReadonlySet<string>, node: Node, ctx: RankContext): number {
  const value = resolveText(spread.attribute, node)
  if (value === undefined) return -1
  let percent: number
  if (spread.targets.length === 0) {
    percent = 100 / Math.max(1, seen.size)
  } else {
    const target = spread.targets.find((t) => t.value === value)
    if (target) {
      percent = target.percent
    } else {
      const rest = 100 - spread.targets.reduce((n, t) => n + t.percent, 0)
      const others = [...seen].filter((v) => !spread.targets.some((t) => t.value === v)).length
      percent = rest / Math.max(1, others)
    }
  }
  const desired = (percent / 100) * Math.max(1, ctx.rules.group.count)
  if (desired <= 0) return -1
  const used = ctx.jobAllocs.countsBy(spread.attribute, ctx.rules.group.name).get(value) ?? 0
  // Nomad counts this placement as a whole one (used + 1), which favours the
  // values with the larger targets (D'Hondt); half of it (Sainte-Laguë) is unbiased.
  return Math.max(-1, Math.min(1, (desired - used - 0.5) / desired))
}

/** The spreads' boosts, weighted by their relative weights. */
export const allocationSpread: RankComponent = (node, ctx) => {
  const spreads = ctx.rules.spreads
  if (spreads.length === 0) return null
  let sum = 0
  let weights = 0
  spreads.forEach((s, i) => {
    sum += s.weight * spreadBoost(s, ctx.spreadValues[i] ?? new Set(), node, ctx)
    weights += s.weight
  })
  return sum / weights
}

export const RANKING: Readonly<Record<string, RankComponent>> = {
  binpack: binPack,
  'job-anti-affinity': jobAntiAffinity,
  'node-affinity': nodeAffinity,
  'allocation-spread': allocationSpread,
}

const RANKING_LIST = Object.entries(RANKING)

const ALL_COMPONENTS = RANKING_LIST.map(([, c]) => c)

/** The components that can score nodes for this group, in RANKING order: the others have nothing to say about any node. */
export function componentsFor(rules: GroupRules): RankComponent[] {
  return ALL_COMPONENTS.filter((c) => (c === nodeAffinity ? rules.affinities.length > 0 : c === allocationSpread ? rules.spreads.length > 0 : true))
}

/**
 * rankNode(node, ctx).score, without collecting the components: the same sum
 * in the same order, so the same number (`components`: all of RANKING, or
 * componentsFor the group).
 */
export function scoreNode(node: Node, ctx: RankContext, components: readonly RankComponent[] = ALL_COMPONENTS): number {
  let sum = 0
  let n = 0
  for (const component of components) {
    const s = component(node, ctx)
    if (s === null) continue
    sum += s
    n++
  }
  return n === 0 ? 0 : sum / n
}

export function rankNode(node: Node, ctx: RankContext): NodeScore {
  const components: Record<string, number> = {}
  let sum = 0
  let n = 0
  for (const [name, component] of RANKING_LIST) {
    const s = component(node, ctx)
    if (s === null) continue
    components[name] = s
    sum += s
    n++
  }
  return { score: n === 0 ? 0 : sum / n, components }
}

/** Per spread, the values of its attribute among the given (feasible) nodes. */
export function spreadValues(spreads: readonly Spread[], nodes: readonly Node[]): Set<string>[] {
  return spreads.map((s) => {
    const values = new Set<string>()
    for (const n of nodes) {
      const v = resolveText(s.attribute, n)
      if (v !== undefined) values.add(v)
    }
    return values
  })
}
