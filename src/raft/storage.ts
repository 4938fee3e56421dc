// Durable Raft state in LevelDB: the log, the hard state (term, vote, commit)
// and the latest snapshot. Every save is one batch, written with sync: true
// whenever it holds entries, a snapshot, a term or a vote, so it is on disk
// before the caller sends any message that depends on it. A change of the
// commit index alone is not written at once: it rides in the next batch, or
// is written unsynced once it has waited a second (saveCommit). Only replay
// depends on it: a restarted node applies its log up to the stored commit
// index at once, and the rest once the leader tells it the commit index.
import { Level } from 'level'
import { decode, encode } from '../fsm/codec.ts'
import type { Entry, EntryType, HardState, PersistentState, Snapshot } from './types.ts'

const HARD_STATE_KEY = 'hs'
const SNAPSHOT_KEY = 'snap'
const entryKey = (index: number) => `e/${String(index).padStart(16, '0')}`
/** Log entries deleted per batch after a snapshot. */
const DELETE_CHUNK = 4096

// An entry on disk: a byte msgpack never starts a value with (0xc1), the
// type, term and index, then the data as is. Writing it costs a copy where
// msgpack walked the object (~60 ns against ~900 ns for a 300-byte entry);
// entries stored as msgpack by earlier versions still load.
const ENTRY_FORMAT = 0xc1
const ENTRY_HEADER = 18
const ENTRY_TYPES: readonly EntryType[] = ['normal', 'confChange', 'noop']

function encodeEntry(e: Entry): Uint8Array {
  const b = Buffer.allocUnsafe(ENTRY_HEADER + e.data.length)
  b[0] = ENTRY_FORMAT
  b[1] = ENTRY_TYPES.indexOf(e.type)
  b.writeDoubleBE(e.term, 2)
  b.writeDoubleBE(e.index, 10)
  b.set(e.data, ENTRY_HEADER)
  return b
}

function decodeEntry(bytes: Uint8Array): Entry {
  if (bytes[0] !== ENTRY_FORMAT) return decode<Entry>(bytes)
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const type = ENTRY_TYPES[b[1]!]
  if (type === undefined || b.length < ENTRY_HEADER) throw new Error(`raft storage: malformed entry (type ${b[1]}, ${b.length} bytes)`)
  return { index: b.readDoubleBE(10), term: b.readDoubleBE(2), type, data: bytes.subarray(ENTRY_HEADER) }
}

export interface SaveRequest {
  hardState?: HardState
  /** Replaces the stored log wholesale (and the entries below are appended after it). */
  snapshot?: Snapshot
  /** Replace stored entries with index >= entries[0].index. */
  entries: Entry[]
}

export class RaftStorage {
  readonly #db: Level<string, Uint8Array>
  #first = 1
  #last = 0
  #hardState: HardState = { term: 0, vote: null, commit: 0 }
  /** #hardState holds a commit index not written yet. */
  #hardStateDirty = false
  /** Date.now() when #hardStateDirty was set. */
  #dirtySince = 0
  #snapshot: Snapshot | null = null
  /** The compaction in progress (see compact()), or a resolved promise. */
  #compaction: Promise<void> = Promise.resolve()

  private constructor(db: Level<string, Uint8Array>) {
    this.#db = db
  }

  static async open(path: string): Promise<RaftStorage> {
    const db = new Level<string, Uint8Array>(path, { keyEncoding: 'utf8', valueEncoding: 'view' })
    await db.open()
    const s = new RaftStorage(db)
    const hs = await db.get(HARD_STATE_KEY)
    if (hs) s.#hardState = decode<HardState>(hs)
    const snap = await db.get(SNAPSHOT_KEY)
    if (snap) s.#snapshot = decode<Snapshot>(snap)
    let first = 0
    let last = 0
    for await (const key of db.keys({ gte: 'e/', lt: 'e0' })) {
      const index = Number(key.slice(2))
      if (first === 0) first = index
      last = index
    }
    s.#first = first || (s.#snapshot ? s.#snapshot.meta.index + 1 : 1)
    s.#last = last || s.#first - 1
    return s
  }

  get lastIndex(): number {
    return this.#last
  }

  get firstIndex(): number {
    return this.#first
  }

  /** Everything a restarting node needs to rebuild its core. */
  async load(): Promise<PersistentState> {
    const entries: Entry[] = []
    const from = Math.max(this.#first, (this.#snapshot?.meta.index ?? 0) + 1)
    for await (const value of this.#db.values({ gte: entryKey(from), lte: entryKey(this.#last) })) entries.push(decodeEntry(value))
    return { hardState: this.#hardState, entries, snapshot: this.#snapshot }
  }

  async save(req: SaveRequest): Promise<void> {
    if (!req.hardState && !req.snapshot && req.entries.length === 0) return
    const prev = this.#hardState
    const hs = req.hardState
    if (hs && !req.snapshot && req.entries.length === 0 && hs.term === prev.term && hs.vote === prev.vote) {
      // Commit index only: not worth a write of its own (nothing depends on it being on disk).
      this.#hardState = hs
      if (!this.#hardStateDirty) this.#dirtySince = Date.now()
      this.#hardStateDirty = true
      return
    }
    if (req.snapshot) await this.#compaction
    const batch = this.#db.batch()
    const startFirst = this.#first
    let first = startFirst
    let last = this.#last
    if (req.snapshot) {
      for (let i = first; i <= last; i++) batch.del(entryKey(i))
      batch.put(SNAPSHOT_KEY, encode(req.snapshot))
      first = req.snapshot.meta.index + 1
      last = req.snapshot.meta.index
    }
    if (req.entries.length > 0) {
      const from = req.entries[0]!.index
      const to = req.entries.at(-1)!.index
      if (from > last + 1) throw new Error(`raft storage: gap before entry ${from} (last stored ${last})`)
      // A shorter replacement truncates the conflicting tail the old log had.
      for (let i = to + 1; i <= last; i++) batch.del(entryKey(i))
      for (const e of req.entries) batch.put(entryKey(e.index), encodeEntry(e))
      if (last < first) first = from
      last = to
    }
    if (hs || this.#hardStateDirty) batch.put(HARD_STATE_KEY, encode(hs ?? prev))
    // Everything that reaches this point is entries, a snapshot, a term or a vote: durable before anyone relies on it.
    await batch.write({ sync: true })
    // A compaction may have moved #first meanwhile: only a change made here is ours to record.
    if (first !== startFirst) this.#first = first
    this.#last = last
    if (hs) this.#hardState = hs
    this.#hardStateDirty = false
    if (req.snapshot) this.#snapshot = req.snapshot
  }

  /** How long a commit index has waited to be written (0: none waits). */
  commitUnsavedMs(now = Date.now()): number {
    return this.#hardStateDirty ? now - this.#dirtySince : 0
  }

  /**
   * Writes a commit index no batch carried, unsynced: after a crash the
   * node replays its log further at start (see the header). Callers must not
   * run it alongside save() or compact().
   */
  async saveCommit(): Promise<void> {
    if (!this.#hardStateDirty) return
    this.#hardStateDirty = false
    await this.#db.put(HARD_STATE_KEY, encode(this.#hardState))
  }

  /**
   * After the application took a snapshot at `snapshot.meta.index`: keep it,
   * drop the log up to it. The snapshot is written (synced) on its own, then
   * the covered entries are deleted in small unsynced batches: a snapshot of
   * a large state used to go out with ~65k deletions in one batch, which held
   * the event loop ~70 ms and the Raft loop ~150 ms on every member at once.
   * Entries the stored snapshot covers are ignored when loading, so a crash
   * part-way leaves nothing wrong. Compactions run one after another, and an
   * installed snapshot (save) waits for the one in progress.
   */
  compact(snapshot: Snapshot): Promise<void> {
    const run = this.#compaction.then(async () => {
      const upTo = Math.min(snapshot.meta.index, this.#last)
      if (this.#snapshot && this.#snapshot.meta.index >= snapshot.meta.index) return
      await this.#db.put(SNAPSHOT_KEY, encode(snapshot), { sync: true })
      this.#snapshot = snapshot
      const from = this.#first
      this.#first = Math.max(this.#first, upTo + 1)
      if (this.#last < this.#first) this.#last = this.#first - 1
      for (let i = from; i <= upTo; i += DELETE_CHUNK) {
        const batch = this.#db.batch()
        for (let j = i; j <= Math.min(upTo, i + DELETE_CHUNK - 1); j++) batch.del(entryKey(j))
        await batch.write()
      }
    })
    this.#compaction = run.catch(() => undefined)
    return run
  }

  /** Forgets everything (an agent leaving its own one-node cluster to join another). */
  async wipe(): Promise<void> {
    await this.#compaction
    const batch = this.#db.batch()
    for await (const key of this.#db.keys()) batch.del(key)
    await batch.write({ sync: true })
    this.#first = 1
    this.#last = 0
    this.#hardState = { term: 0, vote: null, commit: 0 }
    this.#hardStateDirty = false
    this.#snapshot = null
  }

  get snapshot(): Snapshot | null {
    return this.#snapshot
  }

  async close(): Promise<void> {
    await this.#compaction
    if (this.#hardStateDirty) await this.#db.put(HARD_STATE_KEY, encode(this.#hardState))
    this.#hardStateDirty = false
    await this.#db.close()
  }
}
