// Reading task log files: the last N lines, and following appended bytes.
import { open, type FileHandle } from 'node:fs/promises'
import { Readable } from 'node:stream'

const CHUNK = 64 * 1024

/**
 * Offset where the last `lines` lines of the file start (a final line without its
 * newline counts as a line). 0 when the file has fewer lines; the size for 0 lines.
 */
export async function tailOffset(path: string, lines: number): Promise<number> {
  let handle: FileHandle
  try {
    handle = await open(path, 'r')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0
    throw err
  }
  try {
    const size = (await handle.stat()).size
    if (lines <= 0) return size
    let end = size
    let remaining = lines
    const buf = Buffer.allocUnsafe(CHUNK)
    let first = true
    while (end > 0) {
      const start = Math.max(0, end - CHUNK)
      const { bytesRead } = await handle.read(buf, 0, end - start, start)
      let i = bytesRead - 1
      // The newline that ends the file terminates the last line; it does not start one.
      if (first && buf[i] === 0x0a) i--
      first = false
      for (; i >= 0; i--) {
        if (buf[i] !== 0x0a) continue
        remaining--
        if (remaining === 0) return start + i + 1
      }
      end = start
    }
    return 0
  } finally {
    await handle.close()
  }
}

/**
 * The bytes of a file from `start`; with `follow`, then whatever is appended (polled
 * every `pollMs`) until the stream is destroyed. A missing file reads as empty (and is
 * waited for with follow); a truncated file is read again from its start.
 */
export class FileLogStream extends Readable {
  private readonly path: string
  private readonly follow: boolean
  private readonly pollMs: number
  private position: number
  private handle: FileHandle | undefined
  private timer: NodeJS.Timeout | undefined
  private pumping = false

  constructor(path: string, options: { start: number; follow: boolean; pollMs?: number }) {
    super()
    this.path = path
    this.position = options.start
    this.follow = options.follow
    this.pollMs = options.pollMs ?? 200
  }

  override _read(): void {
    if (this.pumping || this.timer) return
    void this.pump()
  }

  private later(): void {
    this.timer = setTimeout(() => {
      this.timer = undefined
      void this.pump()
    }, this.pollMs)
  }

  private async pump(): Promise<void> {
    this.pumping = true
    try {
      for (;;) {
        if (this.destroyed) return
        if (!this.handle) {
          try {
            const handle = await open(this.path, 'r')
            if (this.destroyed) {
              await handle.close()
              return
            }
            this.handle = handle
          } catch (err) {
            if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
            if (!this.follow) {
              this.push(null)
              return
            }
            this.later()
            return
          }
        }
        const buf = Buffer.allocUnsafe(CHUNK)
        const { bytesRead } = await this.handle.read(buf, 0, CHUNK, this.position)
        if (this.destroyed) return
        if (bytesRead > 0) {
          this.position += bytesRead
          if (!this.push(buf.subarray(0, bytesRead))) return
          continue
        }
        if (!this.follow) {
          this.push(null)
          return
        }
        const { size } = await this.handle.stat()
        if (size < this.position) {
          this.position = 0
          continue
        }
        this.later()
        return
      }
    } catch (err) {
      this.destroy(err as Error)
    } finally {
      this.pumping = false
    }
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (this.timer) clearTimeout(this.timer)
    this.timer = undefined
    const handle = this.handle
    this.handle = undefined
    if (!handle) return callback(error)
    handle.close().then(
      () => callback(error),
      () => callback(error),
    )
  }
}
