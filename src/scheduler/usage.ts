// What each node has left: capacity minus the live allocations on it,
// kept up to date as a plan places and stops allocations.
import type { Allocation, Node, Resources } from '../structs/index.ts'
import { isLive } from '../structs/index.ts'

/** What the live allocations on a node use. */
export interface NodeUsage {
  cpu: number
  memoryMB: number
  ports: ReadonlySet<number>
  /** Live allocations per `${jobId}/${group}`, for anti-affinity. */
  jobGroups: ReadonlyMap<string, number>
}

interface OwnUsage extends NodeUsage {
  ports: Set<number>
  jobGroups: Map<string, number>
}

const NOTHING: NodeUsage = Object.freeze({ cpu: 0, memoryMB: 0, ports: new Set<number>(), jobGroups: new Map<string, number>() })

export class UsageTracker {
  /** Nodes this plan placed on or stopped on, summed from their allocations. */
  readonly #byNode = new Map<string, OwnUsage>()
  readonly #allocsOfNode: (nodeId: string) => Allocation[]
  /** The state's own up-to-date sums, when it keeps them: read for nodes the plan has not touched. */
  readonly #stateUsage: ((nodeId: string) => NodeUsage | undefined) | undefined
  readonly #stopped = new Set<string>()
  readonly #stoppedOn = new Set<string>()

  constructor(allocsOfNode: (nodeId: string) => Allocation[], stateUsage?: (nodeId: string) => NodeUsage | undefined) {
    this.#allocsOfNode = allocsOfNode
    this.#stateUsage = stateUsage
  }

  /** The node's usage as this plan leaves it so far. Read-only. */
  usage(node: Node): NodeUsage {
    // The checks and ranking components of one node ask one after the other.
    if (node === this.#lastNode) return this.#lastUsage
    const own = this.#byNode.get(node.id)
    const u = own ?? (this.#stateUsage && !this.#stoppedOn.has(node.id) ? (this.#stateUsage(node.id) ?? NOTHING) : this.#own(node.id))
    this.#lastNode = node
    this.#lastUsage = u
    return u
  }

  #lastNode: Node | null = null
  #lastUsage: NodeUsage = NOTHING

  /** The node's usage as a copy this plan may change: the state's sums, or the live allocations (less those this plan stopped) summed. */
  #own(nodeId: string): OwnUsage {
    let u = this.#byNode.get(nodeId)
    if (!u) {
      const base = this.#stateUsage && !this.#stoppedOn.has(nodeId) ? (this.#stateUsage(nodeId) ?? NOTHING) : null
      if (base) {
        u = { cpu: base.cpu, memoryMB: base.memoryMB, ports: new Set(base.ports), jobGroups: new Map(base.jobGroups) }
      } else {
        u = { cpu: 0, memoryMB: 0, ports: new Set(), jobGroups: new Map() }
        for (const a of this.#allocsOfNode(nodeId)) {
          if (isLive(a) && !this.#stopped.has(a.id)) add(u, a, 1)
        }
      }
      this.#byNode.set(nodeId, u)
      this.#lastNode = null
    }
    return u
  }

  free(node: Node): Resources {
    const u = this.usage(node)
    return { cpu: node.resources.cpu - u.cpu, memoryMB: node.resources.memoryMB - u.memoryMB }
  }

  /** Records a placement of this plan. */
  place(node: Node, alloc: Pick<Allocation, 'jobId' | 'group' | 'resources'>): void {
    add(this.#own(node.id), alloc, 1)
  }

  /** Records a stop of this plan: its resources are free for later placements. */
  stop(alloc: Allocation): void {
    if (this.#stopped.has(alloc.id)) return
    this.#stopped.add(alloc.id)
    this.#stoppedOn.add(alloc.nodeId)
    this.#lastNode = null
    const u = this.#byNode.get(alloc.nodeId)
    if (u && isLive(alloc)) add(u, alloc, -1)
  }
}

function add(u: OwnUsage, a: Pick<Allocation, 'jobId' | 'group' | 'resources'>, sign: 1 | -1): void {
  u.cpu += sign * a.resources.cpu
  u.memoryMB += sign * a.resources.memoryMB
  for (const p of a.resources.ports) {
    if (sign > 0) u.ports.add(p.value)
    else u.ports.delete(p.value)
  }
  const key = `${a.jobId}/${a.group}`
  u.jobGroups.set(key, (u.jobGroups.get(key) ?? 0) + sign)
}
