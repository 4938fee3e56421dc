// A group's placement rules, gathered from the job, group and task levels and
// compiled once per scheduling pass.
import type { Resources, Spread, TaskGroup } from '../structs/index.ts'
import { groupAffinities, groupConstraints, groupResources } from '../structs/index.ts'
import { compileAffinity, compileRule, isAttributeRule, ruleLabel, type CompiledRule } from './constraints.ts'

export type RuleScope = 'job' | 'group'

export interface DistinctProperty {
  attribute: string
  /** Allocations allowed per value of the property. */
  limit: number
  scope: RuleScope
  label: string
  /** The reason for nodes without the attribute. */
  missingReason: string
}

export interface GroupRules {
  jobId: string
  group: TaskGroup
  /** `${jobId}/${group}`: how usage counts the group's allocations per node. */
  key: string
  /** What one allocation of the group needs. */
  need: Resources
  /** The group's static host ports, in the order of its port specs. */
  staticPorts: number[]
  /** Attribute constraints (every operator but distinct_*). */
  constraints: CompiledRule[]
  /** distinct_hosts, if any; a job-level one (no two allocations of the job on a node) wins over a group-level one. */
  distinctHosts: { scope: RuleScope; label: string } | null
  distinctProperties: DistinctProperty[]
  affinities: (CompiledRule & { weight: number })[]
  spreads: Spread[]
}

export function groupRules(jobId: string, group: TaskGroup): GroupRules {
  const all = groupConstraints(group)
  let distinctHosts: GroupRules['distinctHosts'] = null
  const distinctProperties: DistinctProperty[] = []
  for (const c of all) {
    const scope: RuleScope = c.scope === 'job' ? 'job' : 'group'
    if (c.operator === 'distinct_hosts' && c.value !== 'false' && distinctHosts?.scope !== 'job') {
      distinctHosts = { scope, label: ruleLabel({ ...c, value: '' }) }
    }
    if (c.operator === 'distinct_property') {
      const label = ruleLabel(c)
      distinctProperties.push({ attribute: c.attribute, limit: Number(c.value || '1'), scope, label, missingReason: `${label}: attribute missing` })
    }
  }
  return {
    jobId, group,
    key: `${jobId}/${group.name}`,
    need: groupResources(group),
    staticPorts: group.ports.flatMap((p) => (p.static !== undefined ? [p.static] : [])),
    constraints: all.filter(isAttributeRule).map(compileRule),
    distinctHosts,
    distinctProperties,
    affinities: groupAffinities(group).map(compileAffinity),
    spreads: group.spreads ?? [],
  }
}
