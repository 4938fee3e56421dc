// Choosing a node for a placement without scoring every node, as Nomad does:
// the nodes are shuffled once per evaluation (seeded by its id, so schedule()
// stays a pure function), each placement walks on from where the previous
// one stopped, and ranking stops after `limit` feasible nodes: log2 of the
// cluster size for service jobs (at least 2), 2 for batch jobs (the power of
// two choices), max(count, 100) when the group has affinities or spreads.
// Up to MAX_SKIP feasible nodes scoring at or below SKIP_SCORE_THRESHOLD are
// set aside and only compared when the walk runs out of nodes.
//
// When every feasible node fits within the limit (small clusters) the choice
// is the one a full scan makes: the highest score, ties to the lowest node id.
import type { Node } from '../structs/index.ts'
import { checkNodeOnly, checkPlan, planChecksFor, type FeasibilityCheck, type FeasibilityContext } from './feasible.ts'
import { componentsFor, rankNode, scoreNode, spreadValues, type NodeScore, type RankComponent } from './rank.ts'
import type { GroupRules } from './rules.ts'

export const SKIP_SCORE_THRESHOLD = 0
export const MAX_SKIP = 3
/** Feasible nodes ranked per placement of a group with affinities or spreads, at least. */
export const PREFERENCE_RANK_LIMIT = 100

/** How many feasible nodes one placement of the group ranks. */
export function rankLimit(jobType: string, rules: GroupRules, nodeCount: number): number {
  if (rules.affinities.length > 0 || rules.spreads.length > 0) return Math.max(rules.group.count, PREFERENCE_RANK_LIMIT)
  if (jobType === 'batch') return 2
  return Math.max(2, Math.ceil(Math.log2(Math.max(1, nodeCount))))
}

/** FNV-1a of a string: the shuffle's seed. */
export function hashString(s: string): number {
  let h = 2166136261
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619)
  return h >>> 0
}

/** 0..n-1 in an order that depends only on n and the seed (Fisher-Yates over mulberry32). */
export function shuffledOrder(n: number, seed: string): Uint32Array {
  const order = new Uint32Array(n)
  for (let i = 0; i < n; i++) order[i] = i
  let a = hashString(seed)
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1))
    const t = order[i]!
    order[i] = order[j]!
    order[j] = t
  }
  return order
}

export interface Choice {
  node: Node
  score: NodeScore
  /** Position of the node in the id-sorted list. */
  index: number
}

const UNKNOWN = 0
const PASSES = 1
const FILTERED = 2

/** What the walk keeps per group for one evaluation. */
interface GroupWalk {
  /** Per node: whether it passes the checks that depend only on the node (NODE_CHECKS). */
  nodeChecks: Uint8Array
  /** The plan-dependent checks that can reject nodes for the group. */
  planChecks: FeasibilityCheck[]
  /** The ranking components that can score nodes for the group. */
  components: RankComponent[]
}

/** One evaluation's walk over the cluster's nodes. */
export class NodeWalk {
  /** The nodes, sorted by id. */
  readonly nodes: readonly Node[]
  readonly #order: Uint32Array
  #cursor = 0
  readonly #groups = new Map<GroupRules, GroupWalk>()
  /** Groups for which no node was feasible: later placements of them cannot fit either (see schedule()). */
  readonly noFit = new Set<GroupRules>()

  constructor(sortedNodes: readonly Node[], seed: string) {
    this.nodes = sortedNodes
    this.#order = shuffledOrder(sortedNodes.length, seed)
  }

  /** Whether the node at `index` passes every feasibility check now (checkNode(...) === null). */
  #feasible(index: number, ctx: FeasibilityContext, g: GroupWalk): boolean {
    const node = this.nodes[index]!
    let state = g.nodeChecks[index]!
    if (state === UNKNOWN) {
      state = checkNodeOnly(node, ctx) === null ? PASSES : FILTERED
      g.nodeChecks[index] = state
    }
    return state === PASSES && checkPlan(node, ctx, g.planChecks) === null
  }

  /**
   * The best of up to `limit` feasible nodes, walking on from where the last
   * placement stopped; null when no node is feasible (then every node was
   * checked).
   */
  select(ctx: FeasibilityContext, need: { cpu: number; memoryMB: number }, limit: number): Choice | null {
    const n = this.nodes.length
    if (n === 0) return null
    const rules = ctx.rules
    let g = this.#groups.get(rules)
    if (!g) this.#groups.set(rules, (g = { nodeChecks: new Uint8Array(n), planChecks: planChecksFor(rules), components: componentsFor(rules) }))
    const start = this.#cursor
    // Spread scores depend on the values among all feasible nodes: those need the whole walk.
    let feasible: number[] | null = null
    if (rules.spreads.length > 0) {
      feasible = []
      for (let k = 0; k < n; k++) if (this.#feasible(this.#order[(start + k) % n]!, ctx, g)) feasible.push(k)
    }
    const rank = { ...ctx, need, spreadValues: feasible ? spreadValues(rules.spreads, feasible.map((k) => this.nodes[this.#order[(start + k) % n]!]!)) : [] }

    // Candidates are compared by score alone; the winner's components are collected at the end.
    const components = g.components
    let best = -1
    let bestScore = 0
    let seen = 0
    let anyFeasible = false
    const skipped: { index: number; score: number }[] = []
    const consider = (index: number, score: number) => {
      seen++
      if (best < 0 || score > bestScore || (score === bestScore && index < best)) {
        best = index
        bestScore = score
      }
    }
    const visit = (index: number) => {
      anyFeasible = true
      const score = scoreNode(this.nodes[index]!, rank, components)
      if (score <= SKIP_SCORE_THRESHOLD && skipped.length < MAX_SKIP) skipped.push({ index, score })
      else consider(index, score)
    }
    let pulled = n
    if (feasible) {
      for (let f = 0; f < feasible.length && seen < limit; f++) {
        visit(this.#order[(start + feasible[f]!) % n]!)
        pulled = feasible[f]! + 1
      }
      if (seen < limit) pulled = n
    } else {
      let k = 0
      for (; k < n && seen < limit; k++) {
        const index = this.#order[(start + k) % n]!
        if (this.#feasible(index, ctx, g)) visit(index)
      }
      pulled = k
    }
    this.#cursor = (start + pulled) % n
    for (const c of skipped) {
      if (seen >= limit) break
      consider(c.index, c.score)
    }
    if (!anyFeasible) this.noFit.add(rules)
    if (best < 0) return null
    const node = this.nodes[best]!
    return { node, score: rankNode(node, rank), index: best }
  }
}
