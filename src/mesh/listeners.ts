// Which mesh listeners an agent should have, from the published services of
// the jobs it knows: pure, so conflicts and changes are tested without sockets.
import type { BalanceMode } from './balancer.ts'
import type { ProxyProtocolVersion } from './proxy-protocol.ts'

export type PublishMode = 'tcp' | 'http'

/** One `publish` block of one service of one job, as the mesh serves it. */
export interface PublishSpec {
  service: string
  jobId: string
  port: number
  balance: BalanceMode
  proxyProtocol?: ProxyProtocolVersion
  mode: PublishMode
}

/** A publish block that cannot have its port: another service holds it. */
export interface PublishConflict {
  spec: PublishSpec
  /** The spec that holds the port. */
  holder: PublishSpec
  message: string
}

/**
 * One listener per port. `published` comes oldest job first: when two
 * services ask for the same port the older keeps it and the other is a
 * conflict (the same service published twice with the same settings is one listener).
 */
export function desiredListeners(published: readonly PublishSpec[]): { listeners: Map<number, PublishSpec>; conflicts: PublishConflict[] } {
  const listeners = new Map<number, PublishSpec>()
  const conflicts: PublishConflict[] = []
  for (const spec of published) {
    const holder = listeners.get(spec.port)
    if (!holder) {
      listeners.set(spec.port, spec)
      continue
    }
    if (holder.service === spec.service && sameSettings(holder, spec)) continue
    const what = holder.service === spec.service ? `service "${spec.service}" with other settings` : `service "${holder.service}"`
    conflicts.push({
      spec, holder,
      message: `publish port ${spec.port} of service "${spec.service}" (job ${spec.jobId}) is already published by ${what} (job ${holder.jobId})`,
    })
  }
  return { listeners, conflicts }
}

function sameSettings(a: PublishSpec, b: PublishSpec): boolean {
  return a.balance === b.balance && a.proxyProtocol === b.proxyProtocol && a.mode === b.mode
}

/** What to open, close, and change in place (same port, other service or settings: no re-listen). */
export function diffListeners(
  current: ReadonlyMap<number, PublishSpec>,
  desired: ReadonlyMap<number, PublishSpec>,
): { open: PublishSpec[]; close: number[]; update: PublishSpec[] } {
  const open: PublishSpec[] = []
  const update: PublishSpec[] = []
  const close: number[] = []
  for (const [port, spec] of desired) {
    const have = current.get(port)
    if (!have) open.push(spec)
    else if (have.service !== spec.service || have.jobId !== spec.jobId || !sameSettings(have, spec)) update.push(spec)
  }
  for (const port of current.keys()) if (!desired.has(port)) close.push(port)
  return { open, close, update }
}
