// Feasibility: a chain of small checks, each able to reject a node with a
// reason. "filtered" reasons are properties of the node; "exhausted" ones are
// capacity that placements used up (and may come back).
import type { Node, TaskGroup } from '../structs/index.ts'
import { groupResources } from '../structs/index.ts'
import type { UsageTracker } from './usage.ts'

export type Rejection =
  | { kind: 'filtered'; reason: string; detail: string }
  | { kind: 'exhausted'; reason: string; detail: string }

export type FeasibilityCheck = (node: Node, group: TaskGroup, usage: UsageTracker) => Rejection | null

const nodeReady: FeasibilityCheck = (node) =>
  node.status === 'ready' ? null : { kind: 'filtered', reason: 'node not ready', detail: `node ${node.name}: status ${node.status}` }

const nodeEligible: FeasibilityCheck = (node) =>
  node.eligible ? null : { kind: 'filtered', reason: 'node ineligible', detail: `node ${node.name}: ineligible for placements` }

const driversPresent: FeasibilityCheck = (node, group) => {
  for (const t of group.tasks) {
    if (!node.drivers.includes(t.driver)) {
      return { kind: 'filtered', reason: `missing driver "${t.driver}"`, detail: `node ${node.name}: driver "${t.driver}" not available` }
    }
  }
  return null
}

const resourcesFit: FeasibilityCheck = (node, group, usage) => {
  const need = groupResources(group)
  const free = usage.free(node)
  if (need.cpu > free.cpu) {
    return { kind: 'exhausted', reason: 'cpu', detail: `node ${node.name}: cpu exhausted (need ${need.cpu} MHz, free ${free.cpu} MHz)` }
  }
  if (need.memoryMB > free.memoryMB) {
    return { kind: 'exhausted', reason: 'memory', detail: `node ${node.name}: memory exhausted (need ${need.memoryMB} MB, free ${free.memoryMB} MB)` }
  }
  return null
}

const staticPortsFree: FeasibilityCheck = (node, group, usage) => {
  const used = usage.usage(node).ports
  for (const p of group.ports) {
    if (p.static !== undefined && used.has(p.static)) {
      return { kind: 'exhausted', reason: `port ${p.static}`, detail: `node ${node.name}: static port ${p.static} already in use` }
    }
  }
  return null
}

/** The checks, cheapest and most selective first. */
export const FEASIBILITY_CHAIN: readonly FeasibilityCheck[] = [nodeReady, nodeEligible, driversPresent, resourcesFit, staticPortsFree]

export function checkNode(node: Node, group: TaskGroup, usage: UsageTracker): Rejection | null {
  for (const check of FEASIBILITY_CHAIN) {
    const r = check(node, group, usage)
    if (r) return r
  }
  return null
}
