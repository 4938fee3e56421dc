// InstallSnapshot in chunks: a large snapshot goes over the peer stream as
// bounded frames (so no single frame holds the stream or hits the frame
// limit) and is reassembled before it reaches the core.
import type { InstallSnapshotMessage, SnapshotMeta } from './types.ts'

export const SNAPSHOT_CHUNK_BYTES = 256 * 1024
/** Largest snapshot a receiver assembles (bounds memory held per peer). */
export const MAX_SNAPSHOT_BYTES = 1024 * 1024 * 1024

export interface SnapshotChunk {
  type: 'snapshotChunk'
  from: string
  to: string
  term: number
  /** Identifies one transfer: the snapshot index and term. */
  index: number
  snapTerm: number
  seq: number
  total: number
  size: number
  /** Only in the first chunk. */
  meta?: SnapshotMeta
  data: Uint8Array
}

export function splitSnapshot(m: InstallSnapshotMessage, chunkBytes = SNAPSHOT_CHUNK_BYTES): SnapshotChunk[] {
  const data = m.snapshot.data
  const total = Math.max(1, Math.ceil(data.length / chunkBytes))
  const chunks: SnapshotChunk[] = []
  for (let seq = 0; seq < total; seq++) {
    chunks.push({
      type: 'snapshotChunk', from: m.from, to: m.to, term: m.term,
      index: m.snapshot.meta.index, snapTerm: m.snapshot.meta.term, seq, total, size: data.length,
      ...(seq === 0 ? { meta: m.snapshot.meta } : {}),
      data: data.subarray(seq * chunkBytes, (seq + 1) * chunkBytes),
    })
  }
  return chunks
}

export function isSnapshotChunk(x: unknown): x is SnapshotChunk {
  return typeof x === 'object' && x !== null && (x as { type?: unknown }).type === 'snapshotChunk'
}

interface Transfer {
  key: string
  meta: SnapshotMeta
  first: SnapshotChunk
  buffer: Uint8Array
  next: number
  offset: number
}

/** Reassembles chunks per peer; one transfer in progress per peer, in order. */
export class SnapshotAssembler {
  readonly #byPeer = new Map<string, Transfer>()
  dropped = 0

  /** Returns the whole InstallSnapshot message once its last chunk arrives. */
  accept(from: string, c: SnapshotChunk): InstallSnapshotMessage | null {
    const ok = c.from === from && Number.isSafeInteger(c.seq) && Number.isSafeInteger(c.total) && Number.isSafeInteger(c.size) &&
      c.seq >= 0 && c.seq < c.total && c.size >= 0 && c.size <= MAX_SNAPSHOT_BYTES && c.data instanceof Uint8Array
    if (!ok) return this.#drop(from)
    const key = `${c.term}/${c.index}/${c.snapTerm}/${c.total}/${c.size}`
    let t = this.#byPeer.get(from)
    if (c.seq === 0) {
      if (!c.meta) return this.#drop(from)
      t = { key, meta: c.meta, first: c, buffer: new Uint8Array(c.size), next: 0, offset: 0 }
      this.#byPeer.set(from, t)
    }
    // A gap or a chunk of another transfer: give this one up; the leader retries.
    if (!t || t.key !== key || t.next !== c.seq || t.offset + c.data.length > c.size) return this.#drop(from)
    t.buffer.set(c.data, t.offset)
    t.offset += c.data.length
    t.next++
    if (t.next < c.total) return null
    this.#byPeer.delete(from)
    if (t.offset !== c.size) return this.#drop(from)
    return { type: 'installSnapshot', from: c.from, to: c.to, term: t.first.term, snapshot: { meta: t.meta, data: t.buffer } }
  }

  #drop(from: string): null {
    this.#byPeer.delete(from)
    this.dropped++
    return null
  }
}
