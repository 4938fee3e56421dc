// In-memory tables of the cluster state, with the secondary indexes the
// scheduler and API read. Rows are immutable: a change replaces the row.
import type { Allocation, Evaluation, Job, Member, Node, Variable } from '../structs/index.ts'

export interface Rows {
  nodes: Node
  jobs: Job
  /** Every version of every job, keyed `${jobId}@${version}`. */
  jobVersions: Job
  allocs: Allocation
  evals: Evaluation
  vars: Variable
  members: Member
}
export type TableName = keyof Rows
export const TABLE_NAMES: readonly TableName[] = ['nodes', 'jobs', 'jobVersions', 'allocs', 'evals', 'vars', 'members']

export type Change = { [T in TableName]: { table: T; key: string; value: Rows[T] | null } }[TableName]

/** Read access to the state, implemented by the store and by transactions over it. */
export interface StateReader {
  get<T extends TableName>(table: T, key: string): Rows[T] | undefined
  allocsOfJob(jobId: string): Allocation[]
  allocsOfNode(nodeId: string): Allocation[]
}

export function jobVersionKey(jobId: string, version: number): string {
  return `${jobId}@${String(version).padStart(10, '0')}`
}

export class StateStore implements StateReader {
  readonly tables: { [T in TableName]: Map<string, Rows[T]> } = {
    nodes: new Map(), jobs: new Map(), jobVersions: new Map(), allocs: new Map(), evals: new Map(), vars: new Map(), members: new Map(),
  }
  #allocsByJob = new Map<string, Set<string>>()
  #allocsByNode = new Map<string, Set<string>>()
  appliedIndex = 0

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

  /** Versions of a job, oldest first. */
  jobVersions(jobId: string): Job[] {
    const out: Job[] = []
    for (const [key, job] of this.tables.jobVersions) if (key.startsWith(`${jobId}@`)) out.push(job)
    return out.sort((a, b) => a.version - b.version)
  }

  /** Finds a row by exact id or unique id prefix (as `alloc status 3f2a` does). */
  findByPrefix<T extends 'allocs' | 'evals' | 'nodes'>(table: T, prefix: string): Rows[T][] {
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

  applyChanges(changes: readonly Change[], index: number): void {
    for (const c of changes) {
      if (c.table === 'allocs') this.#reindexAlloc(c.key, c.value)
      if (c.value === null) this.tables[c.table].delete(c.key)
      else (this.tables[c.table] as Map<string, unknown>).set(c.key, c.value)
    }
    this.appliedIndex = index
  }

  #reindexAlloc(id: string, next: Allocation | null): void {
    const prev = this.tables.allocs.get(id)
    if (prev) {
      this.#allocsByJob.get(prev.jobId)?.delete(id)
      this.#allocsByNode.get(prev.nodeId)?.delete(id)
    }
    if (next) {
      addTo(this.#allocsByJob, next.jobId, id)
      addTo(this.#allocsByNode, next.nodeId, id)
    }
  }

  #collect(ids: Set<string> | undefined): Allocation[] {
    if (!ids) return []
    const out: Allocation[] = []
    for (const id of ids) {
      const a = this.tables.allocs.get(id)
      if (a) out.push(a)
    }
    return out
  }
}

function addTo(index: Map<string, Set<string>>, key: string, id: string): void {
  let set = index.get(key)
  if (!set) index.set(key, (set = new Set()))
  set.add(id)
}
