// Slots, migrations and scale-in: what the scheduler does with the
// allocations a group keeps (its "occupying" allocations).
//
// A slot is a group index (`job.group[i]`). Normally one allocation holds it;
// while an allocation migrates off a draining node (the drainer set its
// desiredTransition.migrate), its replacement holds the same slot beside it:
// make before break. The migrating allocation is stopped once a replacement
// in its slot is healthy; until then both run and count as one.
import type { Allocation } from '../structs/index.ts'
import { isAllocHealthy, isTerminal } from '../structs/index.ts'

/** The allocations holding one slot: one, or a migrating one and its replacement. */
export interface Slot {
  index: number
  allocs: Allocation[]
}

/** What the slot's migration asks of the plan. */
export interface MigrationStep {
  /** Migrating allocations whose replacement is healthy: stop them. */
  stop: Allocation[]
  /** The slot has no replacement yet: place one (previousAllocId: this allocation). */
  replace?: Allocation
}

export function isMigrating(a: Allocation): boolean {
  return a.desiredTransition?.migrate === true && !isTerminal(a)
}

/** The group's occupying allocations by slot, in index order. */
export function slotsOf(occupying: readonly Allocation[]): Slot[] {
  const byIndex = new Map<number, Allocation[]>()
  for (const a of occupying) {
    const list = byIndex.get(a.index)
    if (list) list.push(a)
    else byIndex.set(a.index, [a])
  }
  return [...byIndex].sort(([x], [y]) => x - y).map(([index, allocs]) => ({ index, allocs }))
}

/**
 * A migrating allocation stops once a live allocation that is not migrating
 * holds its slot and is healthy. With no such allocation (none placed yet, or
 * the last one failed and was stopped) the newest migrating one gets a
 * replacement; a failed one still waiting for its reschedule holds the slot.
 */
export function migrationStep(slot: Slot): MigrationStep {
  const migrating = slot.allocs.filter(isMigrating)
  if (migrating.length === 0) return { stop: [] }
  const staying = slot.allocs.filter((a) => !isMigrating(a))
  if (staying.some((a) => !isTerminal(a) && isAllocHealthy(a))) return { stop: migrating }
  if (staying.length > 0) return { stop: [] }
  return { stop: [], replace: newest(migrating) }
}

/**
 * How healthy an allocation is, worst first: failed or finished, unhealthy,
 * pending, running (not yet healthy), healthy.
 */
export function healthRank(a: Allocation): number {
  if (isTerminal(a)) return 0
  const unhealthy = a.deploymentStatus?.healthy === false ||
    Object.values(a.taskStates).some((t) => t.health === 'unhealthy')
  if (unhealthy) return 1
  if (a.clientStatus === 'pending') return 2
  return isAllocHealthy(a) ? 4 : 3
}

/**
 * The slots to stop when the group has more than `count`: those moving off a
 * draining node first, then the least healthy, then the newest (highest
 * create index, then highest slot index). Running allocations that stay are
 * never touched.
 */
export function scaleIn(slots: readonly Slot[], count: number): Slot[] {
  if (slots.length <= count) return []
  const key = (s: Slot) => {
    const staying = s.allocs.filter((a) => !isMigrating(a))
    const rep = newest(staying.length > 0 ? staying : s.allocs)
    return { moving: staying.length === 0 ? 0 : 1, health: healthRank(rep), createIndex: rep.createIndex }
  }
  const ranked = slots.map((s) => ({ s, k: key(s) }))
  ranked.sort((x, y) => x.k.moving - y.k.moving || x.k.health - y.k.health || y.k.createIndex - x.k.createIndex || y.s.index - x.s.index)
  return ranked.slice(0, slots.length - count).map((r) => r.s)
}

function newest(allocs: readonly Allocation[]): Allocation {
  return allocs.reduce((a, b) => (b.createIndex > a.createIndex || (b.createIndex === a.createIndex && b.id > a.id) ? b : a))
}
