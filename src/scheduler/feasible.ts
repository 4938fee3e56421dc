// Feasibility: a chain of small checks, each able to reject a node with a
// reason. "filtered" reasons are properties of the node (or, for distinct_*,
// of where the job already runs); "exhausted" ones are capacity that
// placements used up (and may come back).
import type { Node } from '../structs/index.ts'
import { resolveText } from './constraints.ts'
import type { JobAllocTracker } from './job-allocs.ts'
import type { GroupRules } from './rules.ts'
import type { UsageTracker } from './usage.ts'

export type Rejection =
  | { kind: 'filtered'; reason: string; detail: string }
  | { kind: 'exhausted'; reason: string; detail: string }

/** What a check may look at: the group's rules and the cluster as this plan leaves it so far. */
export interface FeasibilityContext {
  rules: GroupRules
  usage: UsageTracker
  jobAllocs: JobAllocTracker
}

export type FeasibilityCheck = (node: Node, ctx: FeasibilityContext) => Rejection | null

const filtered = (reason: string, detail: string): Rejection => ({ kind: 'filtered', reason, detail })

/**
 * A rejection whose detail line is only built when read: the checks that
 * depend on the plan run for many nodes per placement, and the scheduler only
 * reads details when a placement fails.
 */
function rejected(kind: Rejection['kind'], reason: string, detail: () => string): Rejection {
  let text: string | undefined
  return { kind, reason, get detail() { return (text ??= detail()) } }
}

export const nodeReady: FeasibilityCheck = (node) =>
  node.status === 'ready' ? null : filtered('node not ready', `node ${node.name}: status ${node.status}`)

export const nodeEligible: FeasibilityCheck = (node) =>
  node.eligible ? null : filtered('node ineligible', `node ${node.name}: ineligible for scheduling${node.drain ? ' (draining)' : ''}`)

export const driversPresent: FeasibilityCheck = (node, { rules }) => {
  for (const t of rules.group.tasks) {
    if (!node.drivers.includes(t.driver)) {
      return filtered(`missing driver "${t.driver}"`, `node ${node.name}: driver "${t.driver}" not available`)
    }
  }
  return null
}

/** Attribute constraints of the job, group and tasks: the first one the node breaks names the reason. */
export const constraintsHold: FeasibilityCheck = (node, { rules }) => {
  for (const c of rules.constraints) {
    const r = c.test(node)
    if (r.ok) continue
    if (r.missing !== undefined) return filtered(`${c.label}: attribute missing`, `node ${node.name}: ${r.missing} is not set (${c.label})`)
    return filtered(c.label, `node ${node.name}: ${r.why} (${c.label})`)
  }
  return null
}

/** distinct_hosts: no two allocations of the group (job-level: of the job) on one node. */
export const distinctHosts: FeasibilityCheck = (node, { rules, usage }) => {
  const d = rules.distinctHosts
  if (!d) return null
  const groups = usage.usage(node).jobGroups
  const mine = d.scope === 'group' ? (groups.get(rules.key) ?? 0) : jobCount(groups, rules.jobId)
  if (mine === 0) return null
  const of = d.scope === 'group' ? `group ${rules.jobId}.${rules.group.name}` : `job ${rules.jobId}`
  return rejected('filtered', d.label, () => `node ${node.name}: already runs ${mine} allocation(s) of ${of} (${d.label})`)
}

function jobCount(groups: ReadonlyMap<string, number>, jobId: string): number {
  const prefix = `${jobId}/`
  let n = 0
  for (const [key, count] of groups) if (key.startsWith(prefix)) n += count
  return n
}

/** distinct_property: at most `limit` allocations of the group (job-level: of the job) per value of the property. */
export const distinctProperty: FeasibilityCheck = (node, { rules, jobAllocs }) => {
  for (const d of rules.distinctProperties) {
    const value = resolveText(d.attribute, node)
    if (value === undefined) return rejected('filtered', d.missingReason, () => `node ${node.name}: ${d.attribute} is not set (${d.label})`)
    const used = jobAllocs.countsBy(d.attribute, d.scope === 'group' ? rules.group.name : undefined).get(value) ?? 0
    if (used >= d.limit) {
      const of = d.scope === 'group' ? `group ${rules.jobId}.${rules.group.name}` : `job ${rules.jobId}`
      return rejected('filtered', d.label, () => `node ${node.name}: ${d.attribute} = ${JSON.stringify(value)} already has ${used} allocation(s) of ${of} (limit ${d.limit})`)
    }
  }
  return null
}

export const resourcesFit: FeasibilityCheck = (node, { rules, usage }) => {
  const need = rules.need
  const u = usage.usage(node)
  const freeCpu = node.resources.cpu - u.cpu
  const freeMemory = node.resources.memoryMB - u.memoryMB
  if (need.cpu > freeCpu) {
    return rejected('exhausted', 'cpu', () => `node ${node.name}: cpu exhausted (need ${need.cpu} MHz, free ${freeCpu} MHz)`)
  }
  if (need.memoryMB > freeMemory) {
    return rejected('exhausted', 'memory', () => `node ${node.name}: memory exhausted (need ${need.memoryMB} MB, free ${freeMemory} MB)`)
  }
  return null
}

export const staticPortsFree: FeasibilityCheck = (node, { rules, usage }) => {
  const ports = rules.staticPorts
  if (ports.length === 0) return null
  const used = usage.usage(node).ports
  for (const port of ports) {
    if (used.has(port)) return rejected('exhausted', `port ${port}`, () => `node ${node.name}: static port ${port} already in use`)
  }
  return null
}

/**
 * Checks that depend only on the node and the group's rules: their answer
 * holds for the whole scheduling pass, so the scheduler asks once per node
 * and group.
 */
export const NODE_CHECKS: readonly FeasibilityCheck[] = [nodeReady, nodeEligible, driversPresent, constraintsHold]

/** Checks that depend on where the job runs and what is used: asked again after every placement. */
export const PLAN_CHECKS: readonly FeasibilityCheck[] = [distinctHosts, distinctProperty, resourcesFit, staticPortsFree]

/** The checks, cheapest and most selective first; those that depend on this plan's placements last. */
export const FEASIBILITY_CHAIN: readonly FeasibilityCheck[] = [...NODE_CHECKS, ...PLAN_CHECKS]

function run(checks: readonly FeasibilityCheck[], node: Node, ctx: FeasibilityContext): Rejection | null {
  for (const check of checks) {
    const r = check(node, ctx)
    if (r) return r
  }
  return null
}

export function checkNode(node: Node, ctx: FeasibilityContext): Rejection | null {
  return run(FEASIBILITY_CHAIN, node, ctx)
}

/** NODE_CHECKS only: the node's own properties against the group's rules. */
export function checkNodeOnly(node: Node, ctx: FeasibilityContext): Rejection | null {
  return run(NODE_CHECKS, node, ctx)
}

/** PLAN_CHECKS only (or those of planChecksFor), for a node that passed checkNodeOnly. */
export function checkPlan(node: Node, ctx: FeasibilityContext, checks: readonly FeasibilityCheck[] = PLAN_CHECKS): Rejection | null {
  return run(checks, node, ctx)
}

/** The PLAN_CHECKS that can reject a node for this group, in chain order: the others pass every node. */
export function planChecksFor(rules: GroupRules): FeasibilityCheck[] {
  return PLAN_CHECKS.filter((check) => {
    if (check === distinctHosts) return rules.distinctHosts !== null
    if (check === distinctProperty) return rules.distinctProperties.length > 0
    if (check === staticPortsFree) return rules.staticPorts.length > 0
    return true
  })
}
