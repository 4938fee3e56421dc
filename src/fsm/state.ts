// In-memory tables of the cluster state, with the secondary indexes the
// scheduler and API read. Rows are immutable: a change replaces the row.
import type { Allocation, Deployment, EvalStatus, Evaluation, Job, Member, Node, ScalingHistory, ServiceInstance, ServiceSummary, Variable } from '../structs/index.ts'
import { isLive } from '../structs/index.ts'
import { instancesOf, ServiceCatalog, type CatalogChange, type PublishedPort } from './catalog.ts'

export interface Rows {
  nodes: Node
  jobs: Job
  /** Every version of every job, keyed `${jobId}@${version}`. */
  jobVersions: Job
  allocs: Allocation
  evals: Evaluation
  vars: Variable
  members: Member
  /** The last decisions about each scaled group, keyed `${jobId}/${group}` (absent in states from before it existed). */
  scalingEvents: ScalingHistory
  /** Rollouts of service job versions (absent in snapshots written before they existed). */
  deployments: Deployment
}
export type TableName = keyof Rows
export const TABLE_NAMES: readonly TableName[] = ['nodes', 'jobs', 'jobVersions', 'allocs', 'evals', 'vars', 'members', 'scalingEvents', 'deployments']

export type Change = { [T in TableName]: { table: T; key: string; value: Rows[T] | null } }[TableName]

/** Read access to the state, implemented by the store and by transactions over it. */
export interface StateReader {
  get<T extends TableName>(table: T, key: string): Rows[T] | undefined
  allocsOfJob(jobId: string): Allocation[]
  allocsOfNode(nodeId: string): Allocation[]
  /** The job's newest deployment (highest createIndex), if any. */
  latestDeployment(jobId: string): Deployment | undefined
}

/**
 * What the live allocations on a node use, kept up to date as allocations
 * change (the scheduler reads it instead of summing a node's allocations on
 * every evaluation). Read-only for callers.
 */
export interface NodeUsage {
  cpu: number
  memoryMB: number
  /** Host ports held by live allocations. */
  ports: ReadonlySet<number>
  /** Live allocations per `${jobId}/${group}`. */
  jobGroups: ReadonlyMap<string, number>
}

interface UsageEntry {
  cpu: number
  memoryMB: number
  ports: Set<number>
  /** How many live allocations hold each port (normally one). */
  portRefs: Map<number, number>
  jobGroups: Map<string, number>
}

export function jobVersionKey(jobId: string, version: number): string {
  return `${jobId}@${String(version).padStart(10, '0')}`
}

export class StateStore implements StateReader {
  readonly tables: { [T in TableName]: Map<string, Rows[T]> } = {
    nodes: new Map(), jobs: new Map(), jobVersions: new Map(), allocs: new Map(), evals: new Map(), vars: new Map(), members: new Map(),
    scalingEvents: new Map(), deployments: new Map(),
  }
  #allocsByJob = new Map<string, Set<string>>()
  #allocsByNode = new Map<string, Set<string>>()
  #usageByNode = new Map<string, UsageEntry>()
  #evalsByJob = new Map<string, Set<string>>()
  #deploymentsByJob = new Map<string, Set<string>>()
  #evalsByStatus = new Map<EvalStatus, Set<string>>()
  #nodesSorted: readonly Node[] | null = null
  readonly #catalog = new ServiceCatalog()
  appliedIndex = 0

  /** Instances of a service (healthy or not; `healthy` says), ordered by node name. */
  serviceInstances(name: string): ServiceInstance[] {
    return this.#catalog.instances(name)
  }

  /** Whether a job declares the service or it has instances. */
  serviceKnown(name: string): boolean {
    return this.#catalog.known(name)
  }

  /** Every service declared by a job or with instances, with instance counts. */
  services(): ServiceSummary[] {
    return this.#catalog.services()
  }

  /** Index of the service's last catalog change (0: never seen). */
  serviceIndex(name: string): number {
    return this.#catalog.serviceIndex(name)
  }

  /** Index of the last change of any service. */
  get catalogIndex(): number {
    return this.#catalog.index
  }

  /** Ports published by services of jobs that are not stopped. */
  publishedPorts(): PublishedPort[] {
    return this.#catalog.publishedPorts()
  }

  get<T extends TableName>(table: T, key: string): Rows[T] | undefined {
    return this.tables[table].get(key)
  }

  list<T extends TableName>(table: T): Rows[T][] {
    return [...this.tables[table].values()]
  }

  allocsOfJob(jobId: string): Allocation[] {
    return this.#collect(this.#allocsByJob.get(jobId))
  }

  allocsOfNode(nodeId: string): Allocation[] {
    return this.#collect(this.#allocsByNode.get(nodeId))
  }

  /** Deployments of a job, newest first. */
  deploymentsOfJob(jobId: string): Deployment[] {
    const out = this.#collectFrom(this.tables.deployments, this.#deploymentsByJob.get(jobId))
    return out.sort((a, b) => b.createIndex - a.createIndex || (a.id < b.id ? 1 : -1))
  }

  latestDeployment(jobId: string): Deployment | undefined {
    return newestDeployment(this.#collectFrom(this.tables.deployments, this.#deploymentsByJob.get(jobId)), jobId)
  }

  /** Every node, sorted by id: one frozen array, kept until the nodes change. */
  nodesSortedById(): readonly Node[] {
    this.#nodesSorted ??= Object.freeze([...this.tables.nodes.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)))
    return this.#nodesSorted
  }

  /** What the live allocations on the node use; undefined when none is there. Do not modify. */
  nodeUsage(nodeId: string): NodeUsage | undefined {
    return this.#usageByNode.get(nodeId)
  }

  /** Evaluations of a job, in no particular order. */
  evalsOfJob(jobId: string): Evaluation[] {
    return this.#collectFrom(this.tables.evals, this.#evalsByJob.get(jobId))
  }

  /** Evaluations with the given status, in no particular order. */
  evalsByStatus(status: EvalStatus): Evaluation[] {
    return this.#collectFrom(this.tables.evals, this.#evalsByStatus.get(status))
  }

  /** Versions of a job, oldest first. */
  jobVersions(jobId: string): Job[] {
    const out: Job[] = []
    for (const [key, job] of this.tables.jobVersions) if (key.startsWith(`${jobId}@`)) out.push(job)
    return out.sort((a, b) => a.version - b.version)
  }

  /** Finds a row by exact id or unique id prefix (as `alloc status 3f2a` does). */
  findByPrefix<T extends 'allocs' | 'evals' | 'nodes' | 'deployments'>(table: T, prefix: string): Rows[T][] {
    const exact = this.tables[table].get(prefix)
    if (exact) return [exact]
    const out: Rows[T][] = []
    for (const [key, row] of this.tables[table]) if (key.startsWith(prefix)) out.push(row)
    return out
  }

  /** Replaces every table (snapshot restore). */
  reset(rows: readonly Change[], index: number): void {
    for (const t of TABLE_NAMES) this.tables[t].clear()
    this.#allocsByJob.clear()
    this.#allocsByNode.clear()
    this.#usageByNode.clear()
    this.#evalsByJob.clear()
    this.#deploymentsByJob.clear()
    this.#evalsByStatus.clear()
    this.#nodesSorted = null
    this.#catalog.clear()
    this.applyChanges(rows, index)
  }

  /** Every row as a change that would recreate it: the body of a snapshot. */
  rows(): Change[] {
    const out: Change[] = []
    for (const table of TABLE_NAMES) {
      for (const [key, value] of this.tables[table]) out.push({ table, key, value } as Change)
    }
    return out
  }

  /** Applies the rows; answers the services whose catalog entry changed. */
  applyChanges(changes: readonly Change[], index: number): CatalogChange[] {
    const allocs = new Set<string>()
    const jobs = new Set<string>()
    const versionsOf = new Set<string>()
    const nodes = new Set<string>()
    for (const c of changes) {
      if (c.table === 'allocs') {
        this.#reindexAlloc(c.key, c.value)
        allocs.add(c.key)
      } else if (c.table === 'evals') this.#reindexEval(c.key, c.value)
      else if (c.table === 'nodes') {
        this.#nodesSorted = null
        nodes.add(c.key)
      } else if (c.table === 'jobs') jobs.add(c.key)
      else if (c.table === 'jobVersions') versionsOf.add((c.value?.id ?? c.key.slice(0, c.key.lastIndexOf('@'))))
      else if (c.table === 'deployments') {
        const prev = this.tables.deployments.get(c.key)
        if (prev) removeFrom(this.#deploymentsByJob, prev.jobId, c.key)
        if (c.value) addTo(this.#deploymentsByJob, c.value.jobId, c.key)
      }
      if (c.value === null) this.tables[c.table].delete(c.key)
      else (this.tables[c.table] as Map<string, unknown>).set(c.key, c.value)
    }
    this.appliedIndex = index
    return this.#updateCatalog(allocs, jobs, versionsOf, nodes, index)
  }

  /** Re-derives the catalog entries the changed rows feed (after all rows are in: a snapshot comes in any order). */
  #updateCatalog(allocs: Set<string>, jobs: Set<string>, versionsOf: Set<string>, nodes: Set<string>, index: number): CatalogChange[] {
    const changed = new Set<string>()
    for (const id of jobs) this.#catalog.setJob(id, this.tables.jobs.get(id), index, changed)
    for (const id of versionsOf) for (const a of this.allocsOfJob(id)) allocs.add(a.id)
    for (const id of nodes) for (const a of this.allocsOfNode(id)) allocs.add(a.id)
    for (const id of allocs) {
      const a = this.tables.allocs.get(id)
      const job = a && this.tables.jobVersions.get(jobVersionKey(a.jobId, a.jobVersion))
      const next = a ? instancesOf(a, job, this.tables.nodes.get(a.nodeId)) : []
      this.#catalog.setAlloc(id, next, index, changed)
    }
    return [...changed].map((service) => ({ service, index, instances: this.#catalog.instances(service) }))
  }

  #reindexAlloc(id: string, next: Allocation | null): void {
    const prev = this.tables.allocs.get(id)
    if (prev) {
      removeFrom(this.#allocsByJob, prev.jobId, id)
      removeFrom(this.#allocsByNode, prev.nodeId, id)
      if (isLive(prev)) this.#use(prev, -1)
    }
    if (next) {
      addTo(this.#allocsByJob, next.jobId, id)
      addTo(this.#allocsByNode, next.nodeId, id)
      if (isLive(next)) this.#use(next, 1)
    }
  }

  #use(a: Allocation, sign: 1 | -1): void {
    let u = this.#usageByNode.get(a.nodeId)
    if (!u) this.#usageByNode.set(a.nodeId, (u = { cpu: 0, memoryMB: 0, ports: new Set(), portRefs: new Map(), jobGroups: new Map() }))
    u.cpu += sign * a.resources.cpu
    u.memoryMB += sign * a.resources.memoryMB
    for (const p of a.resources.ports) {
      const refs = (u.portRefs.get(p.value) ?? 0) + sign
      if (refs > 0) {
        u.portRefs.set(p.value, refs)
        u.ports.add(p.value)
      } else {
        u.portRefs.delete(p.value)
        u.ports.delete(p.value)
      }
    }
    const key = `${a.jobId}/${a.group}`
    const n = (u.jobGroups.get(key) ?? 0) + sign
    if (n > 0) u.jobGroups.set(key, n)
    else u.jobGroups.delete(key)
    if (u.jobGroups.size === 0) this.#usageByNode.delete(a.nodeId)
  }

  #reindexEval(id: string, next: Evaluation | null): void {
    const prev = this.tables.evals.get(id)
    if (prev) {
      removeFrom(this.#evalsByJob, prev.jobId, id)
      removeFrom(this.#evalsByStatus, prev.status, id)
    }
    if (next) {
      addTo(this.#evalsByJob, next.jobId, id)
      addTo(this.#evalsByStatus, next.status, id)
    }
  }

  #collect(ids: Set<string> | undefined): Allocation[] {
    return this.#collectFrom(this.tables.allocs, ids)
  }

  #collectFrom<T>(table: ReadonlyMap<string, T>, ids: Set<string> | undefined): T[] {
    if (!ids) return []
    const out: T[] = []
    for (const id of ids) {
      const row = table.get(id)
      if (row) out.push(row)
    }
    return out
  }
}

/** The newest (highest createIndex; ties: highest id) of a job's deployments. */
export function newestDeployment(all: Iterable<Deployment>, jobId: string): Deployment | undefined {
  let latest: Deployment | undefined
  for (const d of all) {
    if (d.jobId !== jobId) continue
    if (!latest || d.createIndex > latest.createIndex || (d.createIndex === latest.createIndex && d.id > latest.id)) latest = d
  }
  return latest
}

function addTo<K>(index: Map<K, Set<string>>, key: K, id: string): void {
  let set = index.get(key)
  if (!set) index.set(key, (set = new Set()))
  set.add(id)
}

function removeFrom<K>(index: Map<K, Set<string>>, key: K, id: string): void {
  const set = index.get(key)
  if (!set) return
  set.delete(id)
  if (set.size === 0) index.delete(key)
}
