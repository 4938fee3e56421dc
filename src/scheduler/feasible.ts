// Feasibility: a chain of small checks, each able to reject a node with a
// reason. "filtered" reasons are properties of the node (or, for distinct_*,
// of where the job already runs); "exhausted" ones are capacity that
// placements used up (and may come back).
import type { Node } from '../structs/index.ts'
import { groupResources } from '../structs/index.ts'
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

export const nodeReady: FeasibilityCheck = (node) =>
  node.status === 'ready' ? null : filtered('node not ready', `node ${node.name}: status ${node.status}`)

export const nodeEligible: FeasibilityCheck = (node) =>
  node.eligible ? null : filtered('node ineligible', `node ${node.name}: ineligible for placements`)

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
  const mine = d.scope === 'group'
    ? (groups.get(`${rules.jobId}/${rules.group.name}`) ?? 0)
    : [...groups].reduce((n, [key, count]) => n + (key.startsWith(`${rules.jobId}/`) ? count : 0), 0)
  if (mine === 0) return null
  const of = d.scope === 'group' ? `group ${rules.jobId}.${rules.group.name}` : `job ${rules.jobId}`
  return filtered(d.label, `node ${node.name}: already runs ${mine} allocation(s) of ${of} (${d.label})`)
}

/** distinct_property: at most `limit` allocations of the group (job-level: of the job) per value of the property. */
export const distinctProperty: FeasibilityCheck = (node, { rules, jobAllocs }) => {
  for (const d of rules.distinctProperties) {
    const value = resolveText(d.attribute, node)
    if (value === undefined) return filtered(`${d.label}: attribute missing`, `node ${node.name}: ${d.attribute} is not set (${d.label})`)
    const used = jobAllocs.countsBy(d.attribute, d.scope === 'group' ? rules.group.name : undefined).get(value) ?? 0
    if (used >= d.limit) {
      const of = d.scope === 'group' ? `group ${rules.jobId}.${rules.group.name}` : `job ${rules.jobId}`
      return filtered(d.label, `node ${node.name}: ${d.attribute} = ${JSON.stringify(value)} already has ${used} allocation(s) of ${of} (limit ${d.limit})`)
    }
  }
  return null
}

export const resourcesFit: FeasibilityCheck = (node, { rules, usage }) => {
  const need = groupResources(rules.group)
  const free = usage.free(node)
  if (need.cpu > free.cpu) {
    return { kind: 'exhausted', reason: 'cpu', detail: `node ${node.name}: cpu exhausted (need ${need.cpu} MHz, free ${free.cpu} MHz)` }
  }
  if (need.memoryMB > free.memoryMB) {
    return { kind: 'exhausted', reason: 'memory', detail: `node ${node.name}: memory exhausted (need ${need.memoryMB} MB, free ${free.memoryMB} MB)` }
  }
  return null
}

export const staticPortsFree: FeasibilityCheck = (node, { rules, usage }) => {
  const used = usage.usage(node).ports
  for (const p of rules.group.ports) {
    if (p.static !== undefined && used.has(p.static)) {
      return { kind: 'exhausted', reason: `port ${p.static}`, detail: `node ${node.name}: static port ${p.static} already in use` }
    }
  }
  return null
}

/** The checks, cheapest and most selective first; those that depend on this plan's placements last. */
export const FEASIBILITY_CHAIN: readonly FeasibilityCheck[] = [
  nodeReady, nodeEligible, driversPresent, constraintsHold, distinctHosts, distinctProperty, resourcesFit, staticPortsFree,
]

export function checkNode(node: Node, ctx: FeasibilityContext): Rejection | null {
  for (const check of FEASIBILITY_CHAIN) {
    const r = check(node, ctx)
    if (r) return r
  }
  return null
}
