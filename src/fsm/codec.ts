// msgpackr encoding for commands (log entries) and stored rows.
import { Packr } from 'msgpackr'

// Plain maps (no shared record structures): every entry decodes on its own,
// which a replicated log and a snapshot need.
const packr = new Packr({ useRecords: false, mapsAsObjects: true })

export function encode(value: unknown): Uint8Array {
  return packr.pack(value)
}

export function decode<T>(bytes: Uint8Array): T {
  return packr.unpack(bytes) as T
}

/** Decodes a concatenation of encoded values (a streamed snapshot). */
export function decodeAll(bytes: Uint8Array): unknown[] {
  return packr.unpackMultiple(bytes) as unknown[]
}
