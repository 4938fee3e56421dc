// Figures for the placement benchmark: percentiles, a plain-text table, and
// a check that what was placed keeps the hard rules (capacity, ports,
// constraints, distinct_*), so a fast scheduler is not a wrong one.
import type { StateStore } from '../../src/fsm/state.ts'
import { compileRule, isAttributeRule } from '../../src/scheduler/constraints.ts'
import { resolveText } from '../../src/scheduler/constraints.ts'
import type { Allocation, JobSpec } from '../../src/structs/index.ts'
import { groupConstraints, isLive } from '../../src/structs/index.ts'

/** The q-quantile (0..1) of the values, nearest rank; NaN when empty. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return NaN
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!
}

export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const line = (cells: readonly string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd()
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n')
}

export const fmt = (n: number, digits = 0) => (Number.isFinite(n) ? n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }) : '-')

/**
 * Problems with the placements of `jobs` in `state`: overcommitted nodes,
 * shared ports, broken constraints or distinct_* rules, groups not at count.
 * Empty when all is well.
 */
export function verifyPlacements(state: StateStore, jobs: readonly JobSpec[]): string[] {
  const problems: string[] = []
  const live = state.list('allocs').filter(isLive)
  const byNode = new Map<string, Allocation[]>()
  for (const a of live) {
    let list = byNode.get(a.nodeId)
    if (!list) byNode.set(a.nodeId, (list = []))
    list.push(a)
  }
  for (const [nodeId, allocs] of byNode) {
    const n = state.get('nodes', nodeId)
    if (!n) {
      problems.push(`allocations on unknown node ${nodeId}`)
      continue
    }
    const cpu = allocs.reduce((s, a) => s + a.resources.cpu, 0)
    const mem = allocs.reduce((s, a) => s + a.resources.memoryMB, 0)
    if (cpu > n.resources.cpu || mem > n.resources.memoryMB) problems.push(`node ${n.name} overcommitted: ${cpu}/${n.resources.cpu} MHz, ${mem}/${n.resources.memoryMB} MB`)
    const ports = allocs.flatMap((a) => a.resources.ports.map((p) => p.value))
    if (new Set(ports).size !== ports.length) problems.push(`node ${n.name} has a port twice`)
    if (n.status !== 'ready' || !n.eligible) problems.push(`node ${n.name} (${n.status}, eligible ${n.eligible}) got allocations`)
  }
  for (const spec of jobs) {
    for (const g of spec.groups) {
      const mine = live.filter((a) => a.jobId === spec.id && a.group === g.name)
      if (mine.length !== g.count) problems.push(`${spec.id}.${g.name}: ${mine.length} live allocations, count ${g.count}`)
      for (const c of groupConstraints(g)) {
        if (isAttributeRule(c)) {
          const rule = compileRule(c)
          const bad = mine.filter((a) => !rule.test(state.get('nodes', a.nodeId)!).ok).length
          if (bad) problems.push(`${spec.id}.${g.name}: ${bad} allocation(s) break ${rule.label}`)
        } else if (c.operator === 'distinct_hosts' && c.value !== 'false') {
          if (new Set(mine.map((a) => a.nodeId)).size !== mine.length) problems.push(`${spec.id}.${g.name}: distinct_hosts broken`)
        } else if (c.operator === 'distinct_property') {
          const per = new Map<string, number>()
          for (const a of mine) {
            const v = resolveText(c.attribute, state.get('nodes', a.nodeId)!)
            if (v !== undefined) per.set(v, (per.get(v) ?? 0) + 1)
          }
          for (const [v, k] of per) if (k > Number(c.value || '1')) problems.push(`${spec.id}.${g.name}: ${c.attribute} = ${v} has ${k} > ${c.value}`)
        }
      }
    }
  }
  return problems
}

/** How evenly the placements use the cluster: nodes used, and the most allocations on one node. */
export function spreadSummary(state: StateStore): { nodesUsed: number; maxPerNode: number } {
  const per = new Map<string, number>()
  for (const a of state.list('allocs')) if (isLive(a)) per.set(a.nodeId, (per.get(a.nodeId) ?? 0) + 1)
  return { nodesUsed: per.size, maxPerNode: Math.max(0, ...per.values()) }
}
