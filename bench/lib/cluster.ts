// What the benchmark needs from a 3-member cluster, whichever system runs it,
// and the process/temp-dir bookkeeping that guarantees cleanup.
import type { ChildProcess } from 'node:child_process'
import { rmSync } from 'node:fs'

export interface Member {
  name: string
  /** HTTP base URL, e.g. http://127.0.0.61:2379 */
  url: string
}

export interface PutRequest {
  method: string
  path: string
  body: string
}

export interface LeaderView {
  /** The leader as the polled members see it; undefined while there is none. */
  leader?: string
  /** Elections so far, if the system exposes them (etcd: Raft term; Shoal: "became leader" log lines). */
  elections?: number
}

export interface Cluster {
  readonly system: string
  readonly members: Member[]
  /** The settings used, for the report. */
  readonly settings: Record<string, string | number | boolean>
  start(): Promise<void>
  /** Method/path/body of one write of `value` (a 256-byte string) at `key`. */
  put(key: string, value: string): PutRequest
  /** Waits until all members are up, agree on one leader, and a write through every member succeeds. */
  waitHealthy(timeoutMs?: number): Promise<Member>
  observe(): Promise<LeaderView>
  /** kill -9, returning at once (the process is gone when `exited` resolves). */
  kill(member: Member): { exited: Promise<void> }
  restart(member: Member): Promise<void>
  stop(): Promise<void>
  /** Notable log lines of the members (warnings, leadership) received since `sinceMs` (Date.now()). */
  events(sinceMs: number): string[]
}

/** The last few hundred notable log lines of a cluster's members, with when they arrived. */
export class EventLog {
  readonly #lines: { at: number; text: string }[] = []
  readonly #pattern: RegExp

  constructor(pattern: RegExp) {
    this.#pattern = pattern
  }

  add(member: string, line: string): void {
    if (!this.#pattern.test(line)) return
    this.#lines.push({ at: Date.now(), text: `${member}: ${line.trim().slice(0, 300)}` })
    if (this.#lines.length > 300) this.#lines.shift()
  }

  since(ms: number): string[] {
    return this.#lines.filter((l) => l.at >= ms).map((l) => l.text)
  }
}

const children = new Set<ChildProcess>()
const dirs = new Set<string>()

export function track(proc: ChildProcess): void {
  children.add(proc)
  proc.once('exit', () => children.delete(proc))
}

export function trackDir(dir: string): void {
  dirs.add(dir)
}

export function untrackDir(dir: string): void {
  dirs.delete(dir)
}

/** Last resort, synchronous (runs from process 'exit'): SIGKILL every child still running and remove temp dirs. */
export function killAllSync(): void {
  for (const p of children) {
    try {
      p.kill('SIGKILL')
    } catch {
      // already gone
    }
  }
  children.clear()
  for (const d of dirs) rmSync(d, { recursive: true, force: true, maxRetries: 5 })
  dirs.clear()
}

/**
 * Cleanup for a benchmark process: SIGKILL what is left (and remove temp dirs) when it
 * exits; on Ctrl-C, SIGTERM or SIGHUP run `cleanup` first (a second signal exits at once).
 */
export function cleanUpOnExit(cleanup: () => Promise<unknown>, log: (msg: string) => void, what = 'cleaning up'): void {
  process.on('exit', killAllSync)
  let interrupted = false
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      if (interrupted) process.exit(130)
      interrupted = true
      log(`${sig}: ${what}`)
      void cleanup().catch(() => undefined).finally(() => process.exit(130))
    })
  }
}

/** An error `waitFor` does not retry (e.g. the process being waited for has exited). */
export class FatalError extends Error {}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

/** Polls `check` every `intervalMs` until it returns a value; throws with `what` (and the last error) on timeout. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 30_000, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  while (Date.now() < deadline) {
    try {
      const v = await check()
      if (v !== undefined) return v
    } catch (err) {
      if (err instanceof FatalError) throw err
      last = err
    }
    await sleep(intervalMs)
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`)
}

/** The value most entries agree on (undefined entries ignored). */
export function mostCommon(values: (string | undefined)[]): string | undefined {
  const counts = new Map<string, number>()
  for (const v of values) if (v !== undefined) counts.set(v, (counts.get(v) ?? 0) + 1)
  let best: string | undefined
  for (const [v, n] of counts) if (best === undefined || n > counts.get(best)!) best = v
  return best
}
