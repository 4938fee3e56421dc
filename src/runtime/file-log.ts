// Reading task log files that are rotated: `<base>.0`, `<base>.1`, ... (the highest is
// being written; the oldest are deleted past max_files), and `<base>` itself, written
// before rotation existed (an agent upgraded under a running task). The last N lines
// across the files, and following them as they grow and rotate.
import { open, readdir, type FileHandle } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { Readable } from 'node:stream'

const CHUNK = 64 * 1024

/** Index of the un-numbered file, older than every numbered one. */
const LEGACY = -1

export interface LogFile {
  index: number
  path: string
}

/** The files of the rotated log `base`, oldest first. */
export async function rotatedFiles(base: string): Promise<LogFile[]> {
  const dir = dirname(base)
  const name = basename(base)
  let entries: string[]
  try {
    entries = await readdir(dir)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw err
  }
  const files: LogFile[] = []
  for (const e of entries) {
    if (e === name) files.push({ index: LEGACY, path: base })
    else if (e.startsWith(`${name}.`) && /^\d+$/.test(e.slice(name.length + 1))) {
      files.push({ index: Number(e.slice(name.length + 1)), path: join(dir, e) })
    }
  }
  return files.sort((a, b) => a.index - b.index)
}

/** Where reading starts: a file of the list and an offset in it. */
export interface LogPosition {
  index: number
  offset: number
}

/**
 * Where the last `lines` lines of the files, read one after the other, start (a final
 * line without its newline counts as a line; a line split over two files counts once).
 * The start of the first file when there are fewer lines; the end for 0 lines.
 */
export async function tailPosition(files: readonly LogFile[], lines: number): Promise<LogPosition> {
  const first: LogPosition = { index: files[0]?.index ?? 0, offset: 0 }
  let remaining = lines
  let atEnd = true
  const buf = Buffer.allocUnsafe(CHUNK)
  for (let f = files.length - 1; f >= 0; f--) {
    const file = files[f]!
    let handle: FileHandle
    try {
      handle = await open(file.path, 'r')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue // rotated away meanwhile
      throw err
    }
    try {
      const size = (await handle.stat()).size
      if (lines <= 0) return { index: file.index, offset: size }
      let end = size
      while (end > 0) {
        const start = Math.max(0, end - CHUNK)
        const { bytesRead } = await handle.read(buf, 0, end - start, start)
        let i = bytesRead - 1
        // The newline that ends the log terminates the last line; it does not start one.
        if (atEnd && buf[i] === 0x0a) i--
        atEnd = false
        for (; i >= 0; i--) {
          if (buf[i] !== 0x0a) continue
          remaining--
          if (remaining === 0) return { index: file.index, offset: start + i + 1 }
        }
        end = start
      }
    } finally {
      await handle.close()
    }
  }
  return first
}

/**
 * The bytes of a rotated log from `start` (or from its oldest file) on; with `follow`,
 * then whatever is appended, moving on to newer files as they appear (polled every
 * `pollMs`), until the stream is destroyed. No files read as empty (and are waited for
 * with follow); a truncated file is read again from its start.
 */
export class RotatedLogStream extends Readable {
  private readonly base: string
  private readonly follow: boolean
  private readonly pollMs: number
  /** The file being read (undefined: the oldest one, once there is one). */
  private index: number | undefined
  private position: number
  private handle: FileHandle | undefined
  private timer: NodeJS.Timeout | undefined
  private pumping = false

  constructor(base: string, options: { start?: LogPosition; follow: boolean; pollMs?: number }) {
    super()
    this.base = base
    this.index = options.start?.index
    this.position = options.start?.offset ?? 0
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

  /** The file after the current one (the oldest left when the current one is gone), if any. */
  private async next(): Promise<LogFile | undefined> {
    const files = await rotatedFiles(this.base)
    if (this.index === undefined) return files[0]
    return files.find((f) => f.index > this.index!)
  }

  private async closeHandle(): Promise<void> {
    const handle = this.handle
    this.handle = undefined
    await handle?.close().catch(() => undefined)
  }

  private async pump(): Promise<void> {
    this.pumping = true
    try {
      for (;;) {
        if (this.destroyed) return
        if (!this.handle) {
          if (this.index === undefined) {
            const oldest = await this.next()
            if (oldest) this.index = oldest.index
          }
          const handle = this.index === undefined ? undefined : await this.openIndex(this.index)
          if (this.destroyed) {
            await handle?.close()
            return
          }
          if (!handle) {
            // Not there (yet, or rotated away): a newer file, else wait for one.
            const newer = await this.next()
            if (newer && newer.index !== this.index) {
              this.index = newer.index
              this.position = 0
              continue
            }
            if (!this.follow) {
              this.push(null)
              return
            }
            this.later()
            return
          }
          this.handle = handle
        }
        const buf = Buffer.allocUnsafe(CHUNK)
        const { bytesRead } = await this.handle.read(buf, 0, CHUNK, this.position)
        if (this.destroyed) return
        if (bytesRead > 0) {
          this.position += bytesRead
          if (!this.push(buf.subarray(0, bytesRead))) return
          continue
        }
        // At the end of this file: the writer has moved on if a newer one exists. It may have
        // finished this one between our read and that look: read it to the end once more first.
        const newer = await this.next()
        if (newer) {
          const { bytesRead: late } = await this.handle.read(buf, 0, CHUNK, this.position)
          if (this.destroyed) return
          if (late > 0) {
            this.position += late
            if (!this.push(buf.subarray(0, late))) return
            continue
          }
          await this.closeHandle()
          this.index = newer.index
          this.position = 0
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

  private async openIndex(index: number): Promise<FileHandle | undefined> {
    try {
      return await open(index === LEGACY ? this.base : `${this.base}.${index}`, 'r')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw err
    }
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (this.timer) clearTimeout(this.timer)
    this.timer = undefined
    this.closeHandle().then(
      () => callback(error),
      () => callback(error),
    )
  }
}
