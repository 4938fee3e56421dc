// The one small interface every task driver implements (docker, exec).
import type { Readable } from 'node:stream'
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
}
