// The service catalog, derived from jobs and allocations as they change (no
// writes of its own). Each service carries the index of its last change, so
// blocking queries, DNS and the mesh can tell cheaply whether it moved.
import { isDeepStrictEqual } from 'node:util'
import type { Allocation, Job, Node, ServiceInstance, ServiceSpec, ServiceStatus, ServiceSummary } from '../structs/index.ts'

/** One service whose instances or declaration changed at `index`; `instances` as they are then. */
export interface CatalogChange {
  service: string
  index: number
  instances: readonly ServiceInstance[]
}

/** A port published by a service of a (not stopped) job. */
export interface PublishedPort {
  port: number
  jobId: string
  service: ServiceSpec
}

/**
 * The instances an allocation registers: one per service of its group, while it
 * should run and runs. Healthy when the service's checks pass (reported by the
 * client); without checks, while its task (or the allocation) runs. Critical
 * on a node the cluster declared down.
 */
export function instancesOf(alloc: Allocation, job: Job | undefined, node: Node | undefined): ServiceInstance[] {
  if (alloc.desiredStatus !== 'run' || alloc.clientStatus !== 'running' || !job) return []
  const group = job.groups.find((g) => g.name === alloc.group)
  if (!group?.services) return []
  const out: ServiceInstance[] = []
  for (const s of group.services) {
    const port = alloc.resources.ports.find((p) => p.label === s.port)
    if (!port) continue
    // The cluster declared the node down: its allocations are about to be replaced, never routed to.
    const status = node?.status === 'down' ? 'critical' : serviceStatus(alloc, s)
    out.push({
      service: s.name, allocId: alloc.id, jobId: alloc.jobId, group: alloc.group,
      ...(s.task !== undefined ? { task: s.task } : {}),
      nodeId: alloc.nodeId, nodeName: node?.name ?? '', address: port.hostIp, port: port.value,
      tags: s.tags, healthy: status === 'passing', status,
    })
  }
  return out
}

function serviceStatus(alloc: Allocation, s: ServiceSpec): ServiceStatus {
  if (s.task !== undefined) {
    const state = alloc.taskStates[s.task]?.state
    if (state === 'dead') return 'critical'
    if (state !== 'running') return 'unknown'
  }
  if (!s.checks) return 'passing'
  return alloc.serviceHealth?.[s.name]?.status ?? 'unknown'
}

const byInstance = (a: ServiceInstance, b: ServiceInstance) =>
  a.nodeName.localeCompare(b.nodeName) || a.allocId.localeCompare(b.allocId)

export class ServiceCatalog {
  /** service → allocId → instance. */
  readonly #instances = new Map<string, Map<string, ServiceInstance>>()
  readonly #byAlloc = new Map<string, ServiceInstance[]>()
  /** service → jobId → its spec in the job's current version (jobs not stopped). */
  readonly #declared = new Map<string, Map<string, ServiceSpec>>()
  readonly #declaredByJob = new Map<string, ServiceSpec[]>()
  readonly #index = new Map<string, number>()
  #catalogIndex = 0

  /** The index of the catalog's last change (any service). */
  get index(): number {
    return this.#catalogIndex
  }

  /** The index of the service's last change; 0 when it never existed. */
  serviceIndex(name: string): number {
    return this.#index.get(name) ?? 0
  }

  /** Instances of a service (healthy or not), ordered by node name. */
  instances(name: string): ServiceInstance[] {
    const m = this.#instances.get(name)
    return m ? [...m.values()].sort(byInstance) : []
  }

  /** Whether a job declares the service or it has instances. */
  known(name: string): boolean {
    return this.#instances.has(name) || this.#declared.has(name)
  }

  /** Every service that is declared by a job or has instances, by name. */
  services(): ServiceSummary[] {
    const names = new Set([...this.#instances.keys(), ...this.#declared.keys()])
    return [...names].sort().map((name) => {
      const instances = [...(this.#instances.get(name)?.values() ?? [])]
      const declared = this.#declared.get(name)
      const tags = new Set<string>()
      for (const s of declared?.values() ?? []) for (const t of s.tags) tags.add(t)
      for (const i of instances) for (const t of i.tags) tags.add(t)
      const jobs = new Set([...(declared?.keys() ?? []), ...instances.map((i) => i.jobId)])
      return {
        name, tags: [...tags].sort(), jobs: [...jobs].sort(),
        healthy: instances.filter((i) => i.healthy).length, total: instances.length, index: this.serviceIndex(name),
      }
    })
  }

  /** Ports published by services of jobs that are not stopped. */
  publishedPorts(): PublishedPort[] {
    const out: PublishedPort[] = []
    for (const [jobId, specs] of this.#declaredByJob) {
      for (const s of specs) if (s.publish) out.push({ port: s.publish.port, jobId, service: s })
    }
    return out.sort((a, b) => a.port - b.port || a.jobId.localeCompare(b.jobId))
  }

  clear(): void {
    this.#instances.clear()
    this.#byAlloc.clear()
    this.#declared.clear()
    this.#declaredByJob.clear()
  }

  /** A job row changed (or went away): what it declares. */
  setJob(jobId: string, job: Job | undefined, index: number, changed: Set<string>): void {
    const before = this.#declaredByJob.get(jobId) ?? []
    const after = job && !job.stop ? job.groups.flatMap((g) => g.services ?? []) : []
    if (isDeepStrictEqual(before, after)) return
    moveEntries(this.#declared, this.#declaredByJob, jobId, before, after, (s) => s.name)
    const names = new Set([...before, ...after].map((s) => s.name))
    for (const n of names) this.#touch(n, index, changed)
  }

  /** An allocation row changed (or went away): its instances now. */
  setAlloc(allocId: string, next: ServiceInstance[], index: number, changed: Set<string>): void {
    const before = this.#byAlloc.get(allocId) ?? []
    if (isDeepStrictEqual(before, next)) return
    moveEntries(this.#instances, this.#byAlloc, allocId, before, next, (i) => i.service)
    const names = new Set([...before, ...next].map((i) => i.service))
    for (const n of names) {
      const was = before.find((i) => i.service === n)
      const is = next.find((i) => i.service === n)
      if (!isDeepStrictEqual(was, is)) this.#touch(n, index, changed)
    }
  }

  #touch(name: string, index: number, changed: Set<string>): void {
    this.#index.set(name, index)
    if (index > this.#catalogIndex) this.#catalogIndex = index
    changed.add(name)
  }
}

/**
 * Replaces what `key` (a job, an allocation) contributes to a service-name
 * index, `before` → `after`, and records `after` as its current entries.
 */
function moveEntries<T>(
  byName: Map<string, Map<string, T>>, byKey: Map<string, T[]>, key: string,
  before: readonly T[], after: T[], nameOf: (entry: T) => string,
): void {
  for (const e of before) {
    const m = byName.get(nameOf(e))
    m?.delete(key)
    if (m?.size === 0) byName.delete(nameOf(e))
  }
  for (const e of after) {
    let m = byName.get(nameOf(e))
    if (!m) byName.set(nameOf(e), (m = new Map()))
    m.set(key, e)
  }
  if (after.length > 0) byKey.set(key, after)
  else byKey.delete(key)
}
