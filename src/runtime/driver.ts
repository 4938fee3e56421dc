// The one small interface every task driver implements (docker, exec).
import type { Readable, Writable } from 'node:stream'
import type { AllocatedPort, DriverName, Task } from '../structs/index.ts'

/** Everything a driver needs to start one task of one allocation. */
export interface TaskStartSpec {
  allocId: string
  jobId: string
  group: string
  nodeId: string
  task: Task
  /** The group's allocated ports; a docker task publishes those in task.config.ports. */
  ports: AllocatedPort[]
  /** Final environment (job env + SHOAL_* variables), already interpolated. */
  env: Record<string, string>
  /** Host directory owned by this allocation (exec cwd, log files). Exists before start. */
  allocDir: string
  /**
   * docker: join this network namespace ("container:<id>" of the group's pause
   * container) instead of having one of its own; the pause container publishes the ports.
   */
  networkMode?: string
}

/** A group's shared network namespace: what createNetwork needs. */
export interface GroupNetworkSpec {
  allocId: string
  jobId: string
  group: string
  nodeId: string
  /** Ports to publish (the labels the group's tasks list in config.ports). */
  ports: AllocatedPort[]
  /** An image to run the pause process from when the driver has no pause image configured. */
  image: string
}

export interface GroupNetwork {
  /** What tasks put in TaskStartSpec.networkMode. */
  networkMode: string
  /** The container (or other handle) that owns the namespace. */
  id: string
  /** True when it already existed (re-attached after an agent restart). */
  existing: boolean
  /** A process inside the namespace (its /proc/<pid>/ns/net), when the driver knows one. */
  pid?: number
}

/** Identifies a started task; plain data so it can be persisted and recovered. */
export interface TaskHandle {
  driver: DriverName
  /** Container id (docker) or pid (exec, as a string). */
  id: string
  allocId: string
  taskName: string
  startedAt: number
}

export interface ExitResult {
  exitCode: number
  /** Signal number when the task was killed by one (e.g. 9). */
  signal?: number
  oomKilled: boolean
  /** Driver-level failure text, when the exit was not the task's own doing. */
  error?: string
}

export type LogStream = 'stdout' | 'stderr'

export interface LogOptions {
  stream: LogStream
  follow: boolean
  /** Only the last N lines; all when absent. */
  tail?: number
}

export interface ExecOptions {
  /** Give up after this long: the result has timedOut and exit code -1. */
  timeoutMs?: number
  /** Written to the command's stdin, which is then closed; stdin is empty when absent. */
  stdin?: Buffer | string
  /** Output as it comes (the result still collects up to EXEC_OUTPUT_LIMIT bytes of each stream). */
  onOutput?: (stream: LogStream, chunk: Buffer) => void
  /** Aborting stops waiting for the command (as a timeout does). */
  signal?: AbortSignal
}

export interface ExecResult {
  exitCode: number
  stdout: string
  stderr: string
  timedOut?: boolean
}

/** What an interactive session (`alloc exec -i -t`) asks for. */
export interface ExecSessionOptions {
  /** Run the command on a terminal (docker exec Tty; exec driver: a pty through `script`). */
  tty: boolean
  /** Keep the command's stdin open for session.stdin; otherwise it reads end of file. */
  stdin: boolean
  /** Initial window size (tty only). */
  rows: number
  cols: number
}

/** A command running inside a task with its streams live. */
export interface ExecSession {
  /** The command's input (when asked for). */
  stdin?: Writable
  /** Its output; with a tty, stdout and stderr both. */
  stdout: Readable
  stderr?: Readable
  /** New window size (tty only; best effort). */
  resize(rows: number, cols: number): Promise<void>
  /** The exit code, once the output has ended. */
  wait(): Promise<number>
  /** Ends the command (the client went away). */
  kill(): void
}

/** How much of each stream an ExecResult keeps. */
export const EXEC_OUTPUT_LIMIT = 64 * 1024

/** Collects at most EXEC_OUTPUT_LIMIT bytes of a stream. */
export class OutputBuffer {
  #chunks: Buffer[] = []
  #size = 0
  add(chunk: Buffer): void {
    if (this.#size >= EXEC_OUTPUT_LIMIT) return
    const part = chunk.subarray(0, EXEC_OUTPUT_LIMIT - this.#size)
    this.#chunks.push(part)
    this.#size += part.length
  }
  toString(): string {
    return Buffer.concat(this.#chunks).toString('utf8')
  }
}

/** Resolves with what `p` resolves with, or 'timeout' / 'aborted' first. */
export function raceDeadline<T>(p: Promise<T>, timeoutMs: number | undefined, signal: AbortSignal | undefined): Promise<T | 'timeout' | 'aborted'> {
  if (timeoutMs === undefined && signal === undefined) return p
  return new Promise((resolve) => {
    const timer = timeoutMs === undefined ? undefined : setTimeout(() => finish('timeout'), timeoutMs)
    const onAbort = () => finish('aborted')
    if (signal?.aborted) return finish('aborted')
    signal?.addEventListener('abort', onAbort, { once: true })
    void p.then(finish, () => finish('aborted'))
    function finish(v: T | 'timeout' | 'aborted') {
      clearTimeout(timer)
      signal?.removeEventListener('abort', onAbort)
      resolve(v)
    }
  })
}

/** One sample of a running task's resource usage. */
export interface TaskStats {
  /** CPU used over the sample, in percent of one core (above 100 when several cores are busy). */
  cpuPercent: number
  /** Resident memory (RSS) in bytes. */
  memoryRssBytes: number
  /** Memory as its cgroup counts it (with page cache), when known. */
  memoryUsageBytes?: number
  timestamp: number
}

export interface DriverFingerprint {
  healthy: boolean
  detail: string
  attributes: Record<string, string>
}

export interface RecoveredTask {
  allocId: string
  taskName: string
  handle: TaskHandle
  running: boolean
}

/** Raised by start() when the task cannot be started; the message is the exact reason. */
export class DriverError extends Error {
  override name = 'DriverError'
  /** False when retrying cannot help (image missing, command not found, port taken). */
  readonly recoverable: boolean
  constructor(message: string, recoverable = false) {
    super(message)
    this.recoverable = recoverable
  }
}

/** The task cannot be set up to start (a variable of env_from_var is missing, ...): never retried. */
export class SetupError extends DriverError {
  override name = 'SetupError'
  constructor(message: string) {
    super(message, false)
  }
}

export interface Driver {
  readonly name: DriverName
  fingerprint(): Promise<DriverFingerprint>
  /**
   * Starts the task. Idempotent per (allocId, task): if this node already has the
   * task's container/process, it is started again (when stopped) or returned as is
   * (when running); a second one is never created.
   */
  start(spec: TaskStartSpec): Promise<TaskHandle>
  /** Resolves when the task exits (immediately if it already has). */
  wait(handle: TaskHandle): Promise<ExitResult>
  /** Sends the stop signal, then SIGKILL after timeoutMs. No error if already stopped. */
  stop(handle: TaskHandle, timeoutMs: number): Promise<void>
  /** Removes everything the task left behind (container, files). No error if gone. */
  destroy(handle: TaskHandle): Promise<void>
  /** A byte stream of the task's output; ends at the end unless follow. */
  logs(handle: TaskHandle, options: LogOptions): Promise<Readable>
  /** Every task of `nodeId` this driver can still see, running or exited. */
  recover(nodeId: string): Promise<RecoveredTask[]>
  /**
   * Runs `command args` inside the running task (docker exec; exec driver: a process
   * with the task's environment in its working directory) and resolves with its exit
   * code and output. DriverError when the task is not running or the command cannot start.
   */
  exec(handle: TaskHandle, command: string, args: readonly string[], options?: ExecOptions): Promise<ExecResult>
  /** Runs `command args` inside the running task with live streams, on a terminal if asked. DriverError as exec. */
  execSession(handle: TaskHandle, command: string, args: readonly string[], options: ExecSessionOptions): Promise<ExecSession>
  /** Samples the running task's CPU and memory use (takes about a second). DriverError when it is not running. */
  stats(handle: TaskHandle): Promise<TaskStats>
  /**
   * Drivers that can give a group one network namespace (docker: a pause container).
   * Idempotent per allocation: an existing one is returned (re-attached).
   */
  createNetwork?(spec: GroupNetworkSpec): Promise<GroupNetwork>
  /** Removes the allocation's network namespace owner. No error if gone. */
  destroyNetwork?(allocId: string): Promise<void>
  /** Allocation ids of this node's network namespace owners (for cleanup at agent start). */
  recoverNetworks?(nodeId: string): Promise<string[]>
}
