// The cluster state machine: apply(index, command) over in-memory tables.
// It keeps no files of its own: the Raft log and snapshots (LevelDB, written
// before anything depends on them) are the durable record, and a restarted
// agent rebuilds the tables from its last snapshot plus the log after it, as
// Nomad's and Consul's servers do. Writing every applied change to a database
// of its own as well cost each member a fifth of its CPU per write and
// protected nothing the log does not.
import { EventEmitter } from 'node:events'
import { applyCommand } from './apply.ts'
import { decodeAll, encode } from './codec.ts'
import type { ApplyResult, Command } from './commands.ts'
import type { CatalogChange } from './catalog.ts'
import { StateStore, TABLE_NAMES, type Change, type TableName } from './state.ts'

export interface AppliedEvent {
  index: number
  command: Command
  changes: readonly Change[]
  /** Services whose catalog entry (instances, health, declaration) changed with this command. */
  services: readonly CatalogChange[]
}

interface SnapshotBody {
  index: number
  rows: [TableName, string, unknown][]
}

export class Fsm extends EventEmitter<{ applied: [AppliedEvent]; restored: [number] }> {
  readonly state = new StateStore()

  constructor() {
    super()
    this.setMaxListeners(0)
  }

  get appliedIndex(): number {
    return this.state.appliedIndex
  }

  /** Applies one committed command. Callers apply in index order, one at a time. */
  async apply(index: number, command: Command): Promise<ApplyResult> {
    return (await this.applyBatch([{ index, command }]))[0]!
  }

  /** Applies committed commands in order, each seeing the ones before it; listeners hear each. */
  async applyBatch(items: readonly { index: number; command: Command }[]): Promise<ApplyResult[]> {
    const results: ApplyResult[] = []
    const events: AppliedEvent[] = []
    for (const { index, command } of items) {
      if (index <= this.state.appliedIndex) {
        throw new Error(`fsm: index ${index} already applied (at ${this.state.appliedIndex})`)
      }
      const { changes, result } = applyCommand(this.state, index, command)
      const services = this.state.applyChanges(changes, index)
      results.push(result)
      events.push({ index, command, changes, services })
    }
    for (const e of events) this.emit('applied', e)
    return results
  }

  /**
   * The whole state at the applied index, as bytes a Raft snapshot carries: a
   * header then one encoded row after another. Rows are captured at once
   * (they are immutable) and encoded with pauses, so a large state does not
   * stall the agent.
   */
  async snapshot(): Promise<{ index: number; data: Uint8Array }> {
    const index = this.state.appliedIndex
    const rows = this.state.rows()
    const parts: Uint8Array[] = [encode({ v: 2, index, count: rows.length })]
    for (let i = 0; i < rows.length; i++) {
      const c = rows[i]!
      parts.push(encode([c.table, c.key, c.value]))
      if (i % 2_000 === 1_999) await new Promise((r) => setImmediate(r))
    }
    return { index, data: Buffer.concat(parts) }
  }

  /** Replaces the whole state with a snapshot's, at once. */
  async restore(data: Uint8Array): Promise<number> {
    let values: unknown[]
    try {
      values = decodeAll(data)
    } catch (err) {
      throw new Error(`fsm: malformed snapshot: ${(err as Error).message}`)
    }
    const header = values[0] as { v?: unknown; index?: unknown; count?: unknown } | undefined
    let body: SnapshotBody
    if (header?.v === 2 && Number.isInteger(header.index) && header.count === values.length - 1) {
      body = { index: header.index as number, rows: values.slice(1) as SnapshotBody['rows'] }
    } else if (values.length === 1) {
      body = header as unknown as SnapshotBody // the first format: one object with every row
    } else {
      throw new Error('fsm: malformed snapshot: unknown layout')
    }
    if (!body || !Number.isInteger(body.index) || !Array.isArray(body.rows) || !body.rows.every(Array.isArray)) throw new Error('fsm: malformed snapshot')
    const rows = body.rows
      .filter(([table]) => TABLE_NAMES.includes(table))
      .map(([table, key, value]) => ({ table, key, value }) as Change)
    this.state.reset(rows, body.index)
    this.emit('restored', body.index)
    return body.index
  }

  /** Resolves once the applied index reaches `index`, or false on timeout. */
  waitForIndex(index: number, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    return this.waitUntil(() => this.state.appliedIndex >= index, timeoutMs, signal)
  }

  /** Resolves true once `ready()` holds (checked after each applied command and restore), false on timeout or abort. */
  waitUntil(ready: () => boolean, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    if (ready()) return Promise.resolve(true)
    if (signal?.aborted) return Promise.resolve(false)
    return new Promise((resolve) => {
      const done = (ok: boolean) => {
        clearTimeout(timer)
        this.off('applied', onChange)
        this.off('restored', onChange)
        signal?.removeEventListener('abort', onAbort)
        resolve(ok)
      }
      const onChange = () => { if (ready()) done(true) }
      const onAbort = () => done(false)
      const timer = setTimeout(() => done(false), timeoutMs)
      this.on('applied', onChange)
      this.on('restored', onChange)
      signal?.addEventListener('abort', onAbort)
    })
  }
}
