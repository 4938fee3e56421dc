// A child process (etcd member or Shoal agent) with its output kept for error
// messages, registered for cleanup.
import { spawn, type ChildProcess } from 'node:child_process'
import { track } from './cluster.ts'

const KEEP_OUTPUT = 64 * 1024

export class Proc {
  readonly name: string
  readonly child: ChildProcess
  readonly exited: Promise<void>
  #output = ''
  #partial = ''
  #lineListeners: ((line: string) => void)[] = []

  constructor(name: string, cmd: string, args: string[], env?: NodeJS.ProcessEnv) {
    this.name = name
    this.child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    track(this.child)
    this.exited = new Promise((resolve) => {
      this.child.once('exit', () => resolve())
      this.child.once('error', (err) => {
        this.#append(`spawn ${cmd}: ${err.message}\n`)
        resolve()
      })
    })
    this.child.stdout?.on('data', (d: Buffer) => this.#append(d.toString()))
    this.child.stderr?.on('data', (d: Buffer) => this.#append(d.toString()))
  }

  get running(): boolean {
    return this.child.pid !== undefined && this.child.exitCode === null && this.child.signalCode === null
  }

  /** The last 64 KiB of stdout+stderr. */
  get output(): string {
    return this.#output
  }

  onLine(fn: (line: string) => void): void {
    this.#lineListeners.push(fn)
  }

  /** Sends `signal` and returns at once; await `exited` for the process to be gone. */
  signal(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (this.running) this.child.kill(signal)
    return this.exited
  }

  #append(text: string): void {
    this.#output = (this.#output + text).slice(-KEEP_OUTPUT)
    if (this.#lineListeners.length === 0) return
    const lines = (this.#partial + text).split('\n')
    this.#partial = lines.pop() ?? ''
    for (const l of lines) for (const fn of this.#lineListeners) fn(l)
  }
}

/** The last `n` lines of a process's output, indented, for error messages. */
export function tail(p: Proc, n = 15): string {
  return p.output.trimEnd().split('\n').slice(-n).map((l) => `    | ${l}`).join('\n')
}

/** USER_HZ: the unit of /proc/<pid>/stat CPU times on Linux. */
const TICK_MS = 10

/**
 * CPU time (utime+stime, all threads) in ms from the text of /proc/<pid>/stat;
 * with `children`, plus what its reaped children used (cutime+cstime).
 */
export function statCpuMs(stat: string, children = false): number {
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (children ? [11, 12, 13, 14] : [11, 12]).reduce((n, i) => n + Number(f[i] ?? 0), 0) * TICK_MS
}
