// Docker's multiplexed log framing (non-TTY containers): every log entry arrives as
// an 8-byte header [stream, 0, 0, 0, size (uint32 BE)] followed by `size` bytes.
import { Transform, type Readable, type TransformCallback } from 'node:stream'
import type { LogStream } from './driver.ts'

export interface DockerFrame {
  /** 1 = stdout, 2 = stderr (0 = stdin, never sent for logs). */
  stream: number
  payload: Buffer
}

export function streamNumber(stream: LogStream): number {
  return stream === 'stdout' ? 1 : 2
}

/** Incremental frame parser: feed chunks, get back the frames they complete. */
export class FrameParser {
  private pending: Buffer = Buffer.alloc(0)

  push(chunk: Buffer): DockerFrame[] {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk])
    const frames: DockerFrame[] = []
    let offset = 0
    while (this.pending.length - offset >= 8) {
      const size = this.pending.readUInt32BE(offset + 4)
      if (this.pending.length - offset - 8 < size) break
      frames.push({
        stream: this.pending[offset],
        payload: this.pending.subarray(offset + 8, offset + 8 + size),
      })
      offset += 8 + size
    }
    this.pending = this.pending.subarray(offset)
    return frames
  }
}

export function parseFrames(buf: Buffer): DockerFrame[] {
  return new FrameParser().push(buf)
}

/**
 * Hands the payloads of a multiplexed stream (an exec's hijacked connection) to `stdout`
 * and `stderr` as their frames complete (stream 1 to stdout, any other to stderr). Reads
 * `source` in flowing mode; ending the sinks is the caller's.
 */
export function demuxStream(source: Readable, stdout: (chunk: Buffer) => void, stderr: (chunk: Buffer) => void): void {
  const parser = new FrameParser()
  source.on('data', (chunk: Buffer | string) => {
    for (const frame of parser.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk)) {
      if (frame.stream === 1) stdout(frame.payload)
      else stderr(frame.payload)
    }
  })
}

/**
 * With `timestamps=true` docker prefixes every entry with an RFC 3339 timestamp and a
 * space. Returns the timestamp and the entry without it.
 */
export function splitTimestamp(payload: Buffer): { ts: string; line: Buffer } {
  const space = payload.indexOf(0x20)
  if (space < 0) return { ts: '', line: payload }
  return { ts: payload.subarray(0, space).toString('latin1'), line: payload.subarray(space + 1) }
}

/**
 * "2024-05-01T12:34:56.123456789Z" → "1714566896.123456789", the form the logs
 * endpoint's `since` accepts with nanosecond precision. Undefined if unparsable.
 */
export function timestampToSince(ts: string): string | undefined {
  const m = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/.exec(ts)
  if (!m) return undefined
  const ms = Date.parse(m[1] + m[3])
  if (Number.isNaN(ms)) return undefined
  const secs = Math.floor(ms / 1000)
  return `${secs}.${(m[2] ?? '').padEnd(9, '0')}`
}

/** Keeps the payloads of one stream of a multiplexed docker byte stream. */
export class DemuxTransform extends Transform {
  private readonly parser = new FrameParser()
  private readonly want: number
  private readonly stripTimestamps: boolean

  constructor(want: LogStream, stripTimestamps = false) {
    super()
    this.want = streamNumber(want)
    this.stripTimestamps = stripTimestamps
  }

  override _transform(chunk: Buffer | string, _enc: BufferEncoding, done: TransformCallback): void {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk
    for (const frame of this.parser.push(buf)) {
      if (frame.stream !== this.want) continue
      this.push(this.stripTimestamps ? splitTimestamp(frame.payload).line : frame.payload)
    }
    done()
  }
}
