// The live allocations of the job being scheduled and the node each is on,
// kept up to date as the plan stops and places them: distinct_property limits
// and spread count them per value of a node property. A sibling of
// UsageTracker, which counts per node.
import type { Allocation, Node } from '../structs/index.ts'
import { isLive } from '../structs/index.ts'
import { resolveText } from './constraints.ts'

export class JobAllocTracker {
  readonly #live = new Map<string, { group: string; node: Node }>()
  /** Counts per property value, by `${group ?? ''}|${attribute}`, kept up to date once built. */
  readonly #counts = new Map<string, { attribute: string; group: string | undefined; counts: Map<string, number> }>()

  constructor(allocs: readonly Allocation[], nodesById: { get(id: string): Node | undefined }) {
    for (const a of allocs) {
      const node = nodesById.get(a.nodeId)
      if (node && isLive(a)) this.#live.set(a.id, { group: a.group, node })
    }
  }

  /** Records a placement of this plan. */
  place(node: Node, alloc: Pick<Allocation, 'id' | 'group'>): void {
    const a = { group: alloc.group, node }
    this.#live.set(alloc.id, a)
    this.#adjust(a, 1)
  }

  /** Records a stop of this plan. */
  stop(alloc: Pick<Allocation, 'id'>): void {
    const a = this.#live.get(alloc.id)
    if (!a) return
    this.#live.delete(alloc.id)
    this.#adjust(a, -1)
  }

  #adjust(a: { group: string; node: Node }, delta: 1 | -1): void {
    for (const c of this.#counts.values()) {
      if (c.group !== undefined && c.group !== a.group) continue
      const v = resolveText(c.attribute, a.node)
      if (v !== undefined) c.counts.set(v, (c.counts.get(v) ?? 0) + delta)
    }
  }

  /**
   * Live allocations per value of `attribute` on their nodes: of one group, or
   * of the whole job when `group` is undefined. Nodes without the property do
   * not count.
   */
  countsBy(attribute: string, group?: string): ReadonlyMap<string, number> {
    const key = `${group ?? ''}|${attribute}`
    let entry = this.#counts.get(key)
    if (!entry) {
      const counts = new Map<string, number>()
      for (const a of this.#live.values()) {
        if (group !== undefined && a.group !== group) continue
        const v = resolveText(attribute, a.node)
        if (v !== undefined) counts.set(v, (counts.get(v) ?? 0) + 1)
      }
      entry = { attribute, group, counts }
      this.#counts.set(key, entry)
    }
    return entry.counts
  }
}
