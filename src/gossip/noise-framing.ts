// Noise frame lengths without an exception per read. Noise's frame decoder
// asks its length decoder for the next frame after every complete one, and
// the decoder (uint16BEDecode) answers "not enough bytes yet" by throwing a
// new RangeError: a stack trace captured on every TCP read, about 30 µs on
// this kind of machine, more than decrypting a small frame. The replacement
// reads the same 2-byte big-endian length and signals "not yet" with one
// preallocated RangeError (the decoder only checks `instanceof RangeError`).
import type { Connection } from '@libp2p/interface'

/** What the decoder hands a length decoder: a Uint8Array or a Uint8ArrayList. */
type Bytes = Uint8Array | { byteLength: number; get(index: number): number }

const NOT_YET = new RangeError('Could not decode int16BE')

export function noiseFrameLength(data: Bytes): number {
  if (data.byteLength < 2) throw NOT_YET
  if (data instanceof Uint8Array) return (data[0]! << 8) | data[1]!
  return (data.get(0) << 8) | data.get(1)
}

interface DecoderHolder {
  decoder?: { lengthDecoder?: (data: never) => number }
}

/**
 * Gives the connection's Noise stream the cheaper length decoder. The Noise
 * stream is the muxer's underlying connection (not part of libp2p's typed
 * API): anything else is left alone. Returns whether it was replaced.
 */
export function cheaperNoiseFraming(connection: Connection): boolean {
  const noise = (connection as unknown as { muxer?: { maConn?: DecoderHolder } }).muxer?.maConn
  const decoder = noise?.decoder
  if (typeof decoder?.lengthDecoder !== 'function') return false
  if (decoder.lengthDecoder === noiseFrameLength) return true
  // only the 2-byte Noise length: another framing must keep its own decoder
  if (decoder.lengthDecoder.name !== 'uint16BEDecode') return false
  decoder.lengthDecoder = noiseFrameLength
  return true
}
