// What each node has left: capacity minus the live allocations on it,
// kept up to date as a plan places and stops allocations.
import type { Allocation, Node, Resources } from '../structs/index.ts'
import { isLive } from '../structs/index.ts'

export interface NodeUsage {
  cpu: number
  memoryMB: number
  ports: Set<number>
  /** Live allocations per `${jobId}/${group}`, for anti-affinity. */
  jobGroups: Map<string, number>
}

export class UsageTracker {
  readonly #byNode = new Map<string, NodeUsage>()
  readonly #allocsOfNode: (nodeId: string) => Allocation[]
  readonly #stopped = new Set<string>()

  constructor(allocsOfNode: (nodeId: string) => Allocation[]) {
    this.#allocsOfNode = allocsOfNode
  }

  usage(node: Node): NodeUsage {
    let u = this.#byNode.get(node.id)
    if (!u) {
      u = { cpu: 0, memoryMB: 0, ports: new Set(), jobGroups: new Map() }
      for (const a of this.#allocsOfNode(node.id)) {
        if (isLive(a) && !this.#stopped.has(a.id)) add(u, a, 1)
      }
      this.#byNode.set(node.id, u)
    }
    return u
  }

  free(node: Node): Resources {
    const u = this.usage(node)
    return { cpu: node.resources.cpu - u.cpu, memoryMB: node.resources.memoryMB - u.memoryMB }
  }

  /** Records a placement of this plan. */
  place(node: Node, alloc: Pick<Allocation, 'jobId' | 'group' | 'resources'>): void {
    add(this.usage(node), alloc, 1)
  }

  /** Records a stop of this plan: its resources are free for later placements. */
  stop(alloc: Allocation): void {
    if (this.#stopped.has(alloc.id)) return
    this.#stopped.add(alloc.id)
    const u = this.#byNode.get(alloc.nodeId)
    if (u && isLive(alloc)) add(u, alloc, -1)
  }
}

function add(u: NodeUsage, a: Pick<Allocation, 'jobId' | 'group' | 'resources'>, sign: 1 | -1): void {
  u.cpu += sign * a.resources.cpu
  u.memoryMB += sign * a.resources.memoryMB
  for (const p of a.resources.ports) {
    if (sign > 0) u.ports.add(p.value)
    else u.ports.delete(p.value)
  }
  const key = `${a.jobId}/${a.group}`
  u.jobGroups.set(key, (u.jobGroups.get(key) ?? 0) + sign)
}
