// The cluster state machine: apply(index, command) over in-memory tables,
// persisted to LevelDB in batches together with the applied index. Under Raft
// (syncWrites off) the disk copy trails memory: batches are written in order
// in the background, so an answer never waits for a write that protects
// nothing (the Raft log is the durable record and replays what a crash lost).
import { EventEmitter } from 'node:events'
import { Level } from 'level'
import { applyCommand } from './apply.ts'
import { decode, decodeAll, encode } from './codec.ts'
import type { ApplyResult, Command } from './commands.ts'
import type { CatalogChange } from './catalog.ts'
import { StateStore, TABLE_NAMES, type Change, type TableName } from './state.ts'

const APPLIED_KEY = 'meta/applied'

export interface AppliedEvent {
  index: number
  command: Command
  changes: readonly Change[]
  /** Services whose catalog entry (instances, health, declaration) changed with this command. */
  services: readonly CatalogChange[]
}

export interface FsmOptions {
  /**
   * fsync every applied batch before answering. On when the FSM is the only
   * durable record (single-node dev mode); off under Raft, whose log is
   * already durable: then batches are written behind, in order.
   */
  syncWrites: boolean
}

type WriteOp = { key: string; value: Uint8Array | null }

interface SnapshotBody {
  index: number
  rows: [TableName, string, unknown][]
}

export class Fsm extends EventEmitter<{ applied: [AppliedEvent]; restored: [number] }> {
  readonly state: StateStore
  readonly #db: Level<string, Uint8Array>
  readonly #options: FsmOptions
  /** Writes not handed to LevelDB yet (write-behind), in apply order. */
  #queued: WriteOp[] = []
  /** The write in flight, if any; the next one starts when it is done. */
  #writing: Promise<void> | null = null
  #writeError: Error | null = null

  private constructor(db: Level<string, Uint8Array>, state: StateStore, options: FsmOptions) {
    super()
    this.setMaxListeners(0)
    this.#db = db
    this.state = state
    this.#options = options
  }

  static async open(path: string, options: FsmOptions): Promise<Fsm> {
    const db = new Level<string, Uint8Array>(path, { keyEncoding: 'utf8', valueEncoding: 'view' })
    await db.open()
    const state = new StateStore()
    const changes: Change[] = []
    let applied = 0
    for await (const [key, value] of db.iterator()) {
      if (key === APPLIED_KEY) {
        applied = decode<number>(value)
        continue
      }
      const slash = key.indexOf('/')
      const table = key.slice(0, slash) as TableName
      if (!TABLE_NAMES.includes(table)) continue
      changes.push({ table, key: key.slice(slash + 1), value: decode(value) } as Change)
    }
    state.applyChanges(changes, applied)
    return new Fsm(db, state, options)
  }

  get appliedIndex(): number {
    return this.state.appliedIndex
  }

  /** Applies one committed command. Callers apply in index order, one at a time. */
  async apply(index: number, command: Command): Promise<ApplyResult> {
    return (await this.applyBatch([{ index, command }]))[0]!
  }

  /**
   * Applies committed commands in order with one LevelDB write for all of
   * them. Memory moves first (each command must see the ones before it).
   * With syncWrites the answer and the listeners wait for the synced write;
   * without, the write is queued behind the ones before it (see flushed()).
   */
  async applyBatch(items: readonly { index: number; command: Command }[]): Promise<ApplyResult[]> {
    if (this.#writeError) throw this.#writeError
    const ops: WriteOp[] = []
    const results: ApplyResult[] = []
    const events: AppliedEvent[] = []
    for (const { index, command } of items) {
      if (index <= this.state.appliedIndex) {
        throw new Error(`fsm: index ${index} already applied (at ${this.state.appliedIndex})`)
      }
      const { changes, result } = applyCommand(this.state, index, command)
      for (const c of changes) ops.push({ key: `${c.table}/${c.key}`, value: c.value === null ? null : encode(c.value) })
      const services = this.state.applyChanges(changes, index)
      results.push(result)
      events.push({ index, command, changes, services })
    }
    if (events.length === 0) return results
    ops.push({ key: APPLIED_KEY, value: encode(this.state.appliedIndex) })
    if (this.#options.syncWrites) {
      await this.flushed()
      await this.#write(ops, true)
    } else {
      for (const op of ops) this.#queued.push(op)
      this.#writeBehind()
    }
    for (const e of events) this.emit('applied', e)
    return results
  }

  /** Resolves once every applied batch is in LevelDB; rejects if a write failed. */
  async flushed(): Promise<void> {
    while (this.#writing) await this.#writing
    if (this.#writeError) throw this.#writeError
  }

  #writeBehind(): void {
    if (this.#writing || this.#queued.length === 0 || this.#writeError) return
    const ops = this.#queued
    this.#queued = []
    this.#writing = this.#write(ops, false).then(
      () => {
        this.#writing = null
        this.#writeBehind()
      },
      (err: Error) => {
        // Memory is ahead of a disk that refuses writes: every later apply fails (the Raft node stops).
        this.#writeError = new Error(`fsm: state write failed: ${err.message}`)
        this.#writing = null
      },
    )
  }

  #write(ops: readonly WriteOp[], sync: boolean): Promise<void> {
    const batch = this.#db.batch()
    for (const op of ops) {
      if (op.value === null) batch.del(op.key)
      else batch.put(op.key, op.value)
    }
    return batch.write({ sync })
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

  /** Replaces the whole state with a snapshot's, atomically on disk and in memory. */
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
    await this.flushed()
    const batch = this.#db.batch()
    for await (const key of this.#db.keys()) batch.del(key)
    for (const c of rows) batch.put(`${c.table}/${c.key}`, encode(c.value))
    batch.put(APPLIED_KEY, encode(body.index))
    await batch.write({ sync: true })
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

  async close(): Promise<void> {
    try {
      await this.flushed()
    } finally {
      await this.#db.close()
    }
  }
}
