// Dynamic host ports: a deterministic pick per allocation id, probing from a
// hashed offset so that a replacement does not retry a port that just failed.
import type { AllocatedPort, Node, PortSpec } from '../structs/index.ts'

function hash(s: string): number {
  let h = 2166136261
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619)
  return h >>> 0
}

/** Ports for one allocation, or null when the node's dynamic range is used up. */
export function assignPorts(node: Node, specs: readonly PortSpec[], used: ReadonlySet<number>, allocId: string): AllocatedPort[] | null {
  const { min, max } = node.portRange
  const size = max - min + 1
  /** Ports this call handed out already. */
  const mine = new Set<number>()
  const taken = (port: number) => used.has(port) || mine.has(port)
  const out: AllocatedPort[] = []
  let probe = hash(allocId) % size
  for (const spec of specs) {
    let value = spec.static
    if (value === undefined) {
      for (let tries = 0; tries < size; tries++, probe = (probe + 1) % size) {
        if (!taken(min + probe)) {
          value = min + probe
          break
        }
      }
      if (value === undefined) return null
    }
    mine.add(value)
    out.push({ label: spec.label, value, to: spec.to ?? value, hostIp: node.address, ...(spec.protocol ? { protocol: spec.protocol } : {}) })
  }
  return out
}
