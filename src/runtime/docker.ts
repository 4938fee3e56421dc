// The docker task driver: one container per (allocation, task), driven through the
// engine API (docker-engine.ts). Containers carry shoal.* labels so that an agent that
// restarts finds its tasks again (recover) and never starts a second copy (start).
import { stat } from 'node:fs/promises'
import { posix } from 'node:path'
import { PassThrough, pipeline, Readable, type Duplex } from 'node:stream'
import {
  DockerEngine,
  type ContainerCreateOptions,
  type ContainerInspect,
  type ContainerStats,
  type HostConfig,
  type ImageInspect,
} from './docker-engine.ts'
import {
  DriverError,
  OutputBuffer,
  raceDeadline,
  type Driver,
  type DriverFingerprint,
  type ExecOptions,
  type ExecResult,
  type ExecSession,
  type ExecSessionOptions,
  type ExitResult,
  type GroupNetwork,
  type GroupNetworkSpec,
  type LogOptions,
  type LogStream,
  type RecoveredTask,
  type TaskHandle,
  type TaskStartSpec,
  type TaskStats,
} from './driver.ts'
import {
  DemuxTransform,
  demuxStream,
  parseFrames,
  splitTimestamp,
  streamNumber,
  timestampToSince,
} from './docker-logs.ts'
import { kernelLogShowsOomKill } from './kmsg.ts'
import { DEFAULT_TASK_LOGS, portProtocols, type AllocatedPort } from '../structs/index.ts'
import { CPU_PERIOD_US, cpuQuota } from './limits.ts'
import { Semaphore } from './semaphore.ts'

export interface DockerDriverOptions {
  /** Engine socket; default /var/run/docker.sock. */
  socketPath?: string
  /** Bound on the pull tried when an image is not present locally; default 10 000 ms. */
  pullTimeoutMs?: number
  /**
   * Run docker-init (tini) as PID 1 so that SIGTERM reaches programs that ignore it as
   * PID 1 (busybox httpd) and zombies are reaped; default true.
   */
  init?: boolean
  /**
   * How long wait() keeps retrying while the engine does not answer before it resolves
   * with an error result; default 60 000 ms.
   */
  engineRetryMs?: number
  /** Timeout of fingerprint()'s version request; default 5 000 ms. */
  fingerprintTimeoutMs?: number
  /**
   * Image of the pause container that owns a group's network namespace; default
   * $SHOAL_DOCKER_PAUSE_IMAGE, else the image of the group's first docker task.
   */
  pauseImage?: string
  /** Command of the pause container; default $SHOAL_DOCKER_PAUSE_COMMAND (split on spaces), else ["sleep", "2147483647"]. */
  pauseCommand?: string[]
  /** Task containers being created and started at once, at most; default $SHOAL_DOCKER_START_CONCURRENCY, else DEFAULT_START_CONCURRENCY. */
  startConcurrency?: number
}

/** Measured with bench:runtime on 2 cores (see docs/benchmarks-runtime.md). */
export const DEFAULT_START_CONCURRENCY = 4
/** How long an image's inspect data is reused. */
const IMAGE_CACHE_MS = 30_000

export const LABEL_ALLOC = 'shoal.alloc'
export const LABEL_JOB = 'shoal.job'
export const LABEL_GROUP = 'shoal.group'
export const LABEL_TASK = 'shoal.task'
export const LABEL_NODE = 'shoal.node'
/** Set on pause containers (which have no shoal.task label). */
export const LABEL_PAUSE = 'shoal.pause'

const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
/** Docker refuses smaller memory limits. */
const MIN_MEMORY_MB = 6

/** Container name of a task: `shoal-<task>-<allocId>` (characters docker rejects become '-'). */
export function containerName(taskName: string, allocId: string): string {
  return `shoal-${taskName}-${allocId}`.replace(/[^a-zA-Z0-9_.-]/g, '-')
}

/** The engine's ExposedPorts and PortBindings that publish ports, each for its protocols (tcp unless it names udp). */
function publishedPorts(ports: readonly AllocatedPort[]) {
  const exposed: Record<string, object> = {}
  const bindings: Record<string, { HostIp: string; HostPort: string }[]> = {}
  for (const port of ports) {
    for (const proto of portProtocols(port.protocol)) {
      const key = `${port.to}/${proto}`
      exposed[key] = {}
      ;(bindings[key] ??= []).push({ HostIp: port.hostIp, HostPort: String(port.value) })
    }
  }
  return { exposed, bindings }
}

/** Container name of an allocation's pause container (task containers start with "shoal-", so no clash). */
export function pauseContainerName(allocId: string): string {
  return `shoal.pause-${allocId}`.replace(/[^a-zA-Z0-9_.-]/g, '-')
}

interface DockerApiError {
  message?: string
  statusCode?: number
  code?: string
}

/** The HTTP status of an engine answer (DockerEngineError); undefined for connection errors. */
function statusCode(err: unknown): number | undefined {
  return (err as DockerApiError | undefined)?.statusCode
}

/** The engine's own message ("Bind for ... failed"): a DockerEngineError's message is the engine's. */
function apiMessage(err: unknown): string {
  if (err instanceof Error) return err.message
  return String(err)
}

const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ENOENT', 'ECONNRESET', 'EPIPE', 'EACCES', 'ETIMEDOUT', 'EHOSTUNREACH'])

function isConnectionError(err: unknown): boolean {
  const code = (err as DockerApiError | undefined)?.code
  return typeof code === 'string' && CONNECTION_CODES.has(code)
}

/** 137 → 9, 143 → 15: shells, docker and tini report a signal death as 128 + signal. */
export function signalFromExitCode(code: number): number | undefined {
  return code > 128 && code <= 128 + 64 ? code - 128 : undefined
}

function exitResult(exitCode: number, oomKilled: boolean, error?: string): ExitResult {
  const result: ExitResult = { exitCode, oomKilled }
  const signal = signalFromExitCode(exitCode)
  if (signal !== undefined) result.signal = signal
  if (error) result.error = error
  return result
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** Every volume's host path must exist: docker would otherwise create an empty directory there. */
async function checkVolumes(volumes: readonly { hostPath: string }[]): Promise<void> {
  for (const v of volumes) {
    try {
      await stat(v.hostPath)
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code === 'ENOENT' || code === 'ENOTDIR') throw new DriverError(`volume host path "${v.hostPath}" does not exist`, false)
      throw new DriverError(`volume host path "${v.hostPath}": ${(err as Error).message}`, false)
    }
  }
}

/** Go's os.FileMode bits as sent in X-Docker-Container-Path-Stat. */
const MODE_DIR = 2 ** 31
const MODE_SYMLINK = 2 ** 27

type CommandCheck = 'ok' | 'missing' | 'not-executable' | 'unknown'

export class DockerDriver implements Driver {
  readonly name = 'docker' as const
  /** The engine's API client: one keep-alive connection pool per driver. */
  readonly docker: DockerEngine
  private readonly socketPath: string
  private readonly pullTimeoutMs: number
  private readonly init: boolean
  private readonly engineRetryMs: number
  private readonly fingerprintTimeoutMs: number
  private readonly pauseImage: string | undefined
  private readonly pauseCommand: string[]
  /** Serialises start() per (allocId, task) within this process. */
  private readonly starting = new Map<string, Promise<unknown>>()
  /** Bounds the creates and starts in flight: the engine does them slower all at once than a few at a time. */
  private readonly engineSlots: Semaphore
  private readonly images = new Map<string, { info: Promise<ImageInspect>; at: number }>()
  /** Programs found executable, by image id, working dir and candidate paths (see checkCommand). */
  private readonly commandsFound = new Set<string>()

  constructor(options: DockerDriverOptions = {}) {
    this.socketPath = options.socketPath ?? '/var/run/docker.sock'
    this.pullTimeoutMs = options.pullTimeoutMs ?? 10_000
    this.init = options.init ?? true
    this.engineRetryMs = options.engineRetryMs ?? 60_000
    this.fingerprintTimeoutMs = options.fingerprintTimeoutMs ?? 5_000
    this.pauseImage = options.pauseImage ?? (process.env.SHOAL_DOCKER_PAUSE_IMAGE || undefined)
    const envCommand = process.env.SHOAL_DOCKER_PAUSE_COMMAND?.trim()
    this.pauseCommand = options.pauseCommand ?? (envCommand ? envCommand.split(/\s+/) : ['sleep', '2147483647'])
    this.docker = new DockerEngine({ socketPath: this.socketPath })
    const envSlots = Number(process.env.SHOAL_DOCKER_START_CONCURRENCY)
    this.engineSlots = new Semaphore(options.startConcurrency ?? (Number.isInteger(envSlots) && envSlots > 0 ? envSlots : DEFAULT_START_CONCURRENCY))
  }

  async fingerprint(): Promise<DriverFingerprint> {
    const signal = AbortSignal.timeout(this.fingerprintTimeoutMs)
    try {
      const v = await this.docker.version(signal)
      return {
        healthy: true,
        detail: `docker engine ${v.Version} (API ${v.ApiVersion})`,
        attributes: {
          'driver.docker': '1',
          'driver.docker.version': v.Version,
          'driver.docker.api_version': v.ApiVersion,
          'driver.docker.os': v.Os,
          'driver.docker.arch': v.Arch,
          'driver.docker.init': String(this.init),
        },
      }
    } catch (err) {
      const reason = signal.aborted ? `no answer within ${this.fingerprintTimeoutMs} ms` : apiMessage(err)
      return {
        healthy: false,
        detail: `docker engine not reachable at ${this.socketPath}: ${reason}`,
        attributes: {},
      }
    }
  }

  async start(spec: TaskStartSpec): Promise<TaskHandle> {
    if (spec.task.driver !== 'docker') {
      throw new DriverError(`task "${spec.task.name}" uses the ${spec.task.driver} driver, not docker`)
    }
    const key = containerName(spec.task.name, spec.allocId)
    const previous = this.starting.get(key) ?? Promise.resolve()
    const run = previous.catch(() => undefined).then(() => this.startLocked(spec))
    this.starting.set(key, run)
    try {
      return await run
    } finally {
      if (this.starting.get(key) === run) this.starting.delete(key)
    }
  }

  private async startLocked(spec: TaskStartSpec): Promise<TaskHandle> {
    const task = spec.task
    if (task.driver !== 'docker') throw new DriverError('not a docker task')
    const name = containerName(task.name, spec.allocId)
    await checkVolumes(task.config.volumes ?? [])
    const options = this.createOptions(spec, name)
    return this.engineSlots.run(async () => {
      // Create first: an existing container of the task (created before an agent restart)
      // answers 409, and is then started or returned as is, never created twice.
      let image: ImageInspect
      try {
        image = await this.ensureImage(task.config.image, spec)
      } catch (err) {
        // The image is gone but the task's container is still there: it can run without it.
        const existing = await this.inspectOrUndefined(name, spec).catch(() => undefined)
        if (existing) return this.startExisting(existing, spec)
        throw err
      }
      let container: string
      try {
        container = await this.docker.createContainer(options)
      } catch (err) {
        if (statusCode(err) === 409) {
          const existing = await this.inspectOrUndefined(name, spec)
          if (existing) return this.startExisting(existing, spec)
        }
        if (statusCode(err) !== 404 || !/no such image/i.test(apiMessage(err))) throw this.mapError(err, spec)
        // Removed since it was inspected: look again (and pull), once.
        this.images.delete(task.config.image)
        image = await this.ensureImage(task.config.image, spec)
        try {
          container = await this.docker.createContainer(options)
        } catch (again) {
          throw this.mapError(again, spec)
        }
      }
      try {
        await this.checkCommand(container, image, options.Cmd, spec.env)
        await this.docker.startContainer(container)
        // The engine's StartedAt, so that a handle recovered later is the same handle.
        return this.handleOf(await this.docker.inspectContainer(container), spec.allocId, task.name)
      } catch (err) {
        await this.docker.removeContainer(container, { force: true, v: true }).catch(() => undefined)
        throw err instanceof DriverError ? err : this.mapError(err, spec)
      }
    })
  }

  /** The task's container already exists: return it if it runs, start it again if not. */
  private async startExisting(info: ContainerInspect, spec: TaskStartSpec): Promise<TaskHandle> {
    if (info.State.Running) return this.handleOf(info, spec.allocId, spec.task.name)
    try {
      await this.docker.startContainer(info.Id)
      return this.handleOf(await this.docker.inspectContainer(info.Id), spec.allocId, spec.task.name)
    } catch (err) {
      throw this.mapError(err, spec)
    }
  }

  private handleOf(info: ContainerInspect, allocId: string, taskName: string): TaskHandle {
    const started = Date.parse(info.State.StartedAt)
    return {
      driver: 'docker',
      id: info.Id,
      allocId,
      taskName,
      startedAt: Number.isNaN(started) || started <= 0 ? Date.now() : started,
    }
  }

  private async inspectOrUndefined(idOrName: string, spec: TaskStartSpec): Promise<ContainerInspect | undefined> {
    try {
      return await this.docker.inspectContainer(idOrName)
    } catch (err) {
      if (statusCode(err) === 404) return undefined
      throw this.mapError(err, spec)
    }
  }

  private createOptions(spec: TaskStartSpec, name: string): ContainerCreateOptions {
    const task = spec.task
    if (task.driver !== 'docker') throw new DriverError('not a docker task')
    const cfg = task.config

    let cmd: string[] | undefined
    if (cfg.command) cmd = [cfg.command, ...cfg.args]
    else if (cfg.args.length > 0) cmd = [...cfg.args]

    const { exposed, bindings } = publishedPorts(cfg.ports.map((label) => {
      const port = spec.ports.find((p) => p.label === label)
      if (!port) {
        throw new DriverError(`port "${label}" of task "${task.name}" has no port allocated in group "${spec.group}"`)
      }
      return port
    }))

    const logs = task.logs ?? DEFAULT_TASK_LOGS
    const memoryMB = task.resources.memoryMB
    if (memoryMB > 0 && memoryMB < MIN_MEMORY_MB) {
      throw new DriverError(`memory limit of ${memoryMB} MB is below docker's minimum of ${MIN_MEMORY_MB} MB`)
    }
    const memory = memoryMB > 0 ? Math.round(memoryMB * 1024 * 1024) : 0
    // memory_max: the hard limit; memory stays the (soft) reservation.
    const maxMB = task.resources.memoryMaxMB
    const limits: HostConfig = maxMB !== undefined && maxMB > memoryMB
      ? { Memory: maxMB * 1024 * 1024, MemorySwap: maxMB * 1024 * 1024, ...(memory > 0 ? { MemoryReservation: memory } : {}) }
      : memory > 0 ? { Memory: memory, MemorySwap: memory } : {}
    if (cfg.cpuHardLimit) {
      // As Nomad: the task's MHz as a share of one core's, of each 100 ms period.
      limits.CpuPeriod = CPU_PERIOD_US
      limits.CpuQuota = cpuQuota(task.resources.cpu)
    }
    if (cfg.volumes?.length) limits.Binds = cfg.volumes.map((v) => `${v.hostPath}:${v.containerPath}${v.readOnly ? ':ro' : ''}`)

    // In a group's shared namespace the pause container publishes the ports.
    const network: Pick<ContainerCreateOptions, 'ExposedPorts'> & { HostConfig: HostConfig } = spec.networkMode
      ? { HostConfig: { NetworkMode: spec.networkMode } }
      : { ExposedPorts: exposed, HostConfig: { PortBindings: bindings } }
    const options: ContainerCreateOptions = {
      name,
      Image: cfg.image,
      Env: Object.entries(spec.env).map(([k, v]) => `${k}=${v}`),
      Labels: {
        [LABEL_ALLOC]: spec.allocId,
        [LABEL_JOB]: spec.jobId,
        [LABEL_GROUP]: spec.group,
        [LABEL_TASK]: task.name,
        [LABEL_NODE]: spec.nodeId,
      },
      ...(network.ExposedPorts ? { ExposedPorts: network.ExposedPorts } : {}),
      HostConfig: {
        ...network.HostConfig,
        CpuShares: Math.max(2, Math.round(task.resources.cpu)),
        Init: this.init,
        // The task's logs block, whatever the engine's default log driver: json-file rotates and can be read back.
        LogConfig: { Type: 'json-file', Config: { 'max-size': `${logs.maxFileSizeMB}m`, 'max-file': String(logs.maxFiles) } },
        ...limits,
      },
    }
    if (cmd) options.Cmd = cmd
    return options
  }

  /**
   * The image's inspect data, pulling it when it is not present. Remembered for
   * IMAGE_CACHE_MS and shared by concurrent starts, so N allocations of one image cost
   * one inspect, not N (a create that finds the image gone looks again).
   */
  private ensureImage(image: string, spec: TaskStartSpec | undefined): Promise<ImageInspect> {
    const cached = this.images.get(image)
    if (cached && Date.now() - cached.at < IMAGE_CACHE_MS) return cached.info
    const info = this.inspectOrPull(image, spec)
    const entry = { info, at: Date.now() }
    this.images.set(image, entry)
    info.catch(() => {
      if (this.images.get(image) === entry) this.images.delete(image)
    })
    return info
  }

  private async inspectOrPull(image: string, spec: TaskStartSpec | undefined): Promise<ImageInspect> {
    try {
      return await this.docker.inspectImage(image)
    } catch (err) {
      if (statusCode(err) !== 404) throw this.mapError(err, spec)
    }
    try {
      await this.pull(image)
      return await this.docker.inspectImage(image)
    } catch (err) {
      const reason = (err instanceof PullError ? err.message : apiMessage(err)).trim()
      throw new DriverError(`image "${image}" not found locally and could not be pulled: ${reason}`, false)
    }
  }

  /** Pulls `image`, giving up after pullTimeoutMs. Errors in the progress stream count. */
  private async pull(image: string): Promise<void> {
    const controller = new AbortController()
    const timer = setTimeout(() => controller.abort(), this.pullTimeoutMs)
    try {
      await this.docker.pullImage(image, controller.signal)
    } catch (err) {
      if (controller.signal.aborted) throw new PullError(`pull timed out after ${this.pullTimeoutMs} ms`)
      throw new PullError(apiMessage(err))
    } finally {
      clearTimeout(timer)
    }
  }

  /**
   * Checks that the program of `cmd` exists and is executable in the (created, not yet
   * started) container's filesystem. With docker-init as PID 1 a missing program would
   * not fail `start` but make tini exit 127 a moment later; this turns it into a
   * DriverError up front. Images with an entrypoint are not checked (cmd are its args).
   */
  private async checkCommand(
    container: string,
    image: ImageInspect,
    cmd: string[] | undefined,
    env: Record<string, string>,
  ): Promise<void> {
    const program = cmd?.[0]
    if (!program) return
    const entrypoint = image.Config?.Entrypoint
    if (Array.isArray(entrypoint) ? entrypoint.length > 0 : Boolean(entrypoint)) return

    const workdir = image.Config?.WorkingDir || '/'
    let candidates: string[]
    if (program.includes('/')) {
      candidates = [posix.resolve(workdir, program)]
    } else {
      const imagePath = (image.Config?.Env ?? []).find((e) => e.startsWith('PATH='))?.slice(5)
      const searchPath = env.PATH ?? imagePath ?? DEFAULT_PATH
      candidates = searchPath
        .split(':')
        .filter((d) => d !== '')
        .map((d) => posix.join(posix.resolve(workdir, d), program))
    }
    // Same image, program and search path: same answer (the filesystem comes from the image).
    const key = `${image.Id}\0${workdir}\0${candidates.join(':')}`
    if (this.commandsFound.has(key)) return
    let notExecutable = false
    for (const candidate of candidates) {
      const check = await this.checkExecutable(container, candidate)
      if (check === 'ok' || check === 'unknown') {
        if (check === 'ok') {
          if (this.commandsFound.size >= 1000) this.commandsFound.clear()
          this.commandsFound.add(key)
        }
        return
      }
      if (check === 'not-executable') notExecutable = true
    }
    if (notExecutable) throw new DriverError(`command "${program}" is not executable in image`, false)
    throw new DriverError(`command "${program}" not found in image`, false)
  }

  private async checkExecutable(container: string, path: string): Promise<CommandCheck> {
    let current = path
    for (let hops = 0; hops < 16; hops++) {
      const stat = await this.statPath(container, current)
      if (stat === undefined) return 'missing'
      if (stat === 'unknown') return 'unknown'
      if (Math.floor(stat.mode / MODE_SYMLINK) % 2 === 1 && stat.linkTarget) {
        current = posix.resolve(posix.dirname(current), stat.linkTarget)
        continue
      }
      if (Math.floor(stat.mode / MODE_DIR) % 2 === 1) return 'not-executable'
      return (stat.mode & 0o111) !== 0 ? 'ok' : 'not-executable'
    }
    return 'unknown'
  }

  /** stat of a path inside a container (works before it starts); undefined if absent. */
  private async statPath(container: string, path: string): Promise<{ mode: number; linkTarget: string } | undefined | 'unknown'> {
    try {
      return (await this.docker.statPath(container, path)) ?? 'unknown'
    } catch (err) {
      if (statusCode(err) === 404) return undefined
      return 'unknown'
    }
  }

  /** Turns an engine error into a DriverError whose message is the exact reason. */
  private mapError(err: unknown, spec: TaskStartSpec | undefined): DriverError {
    if (err instanceof DriverError) return err
    const msg = apiMessage(err)
    let m = /Bind for (.+?):(\d+) failed: port is already allocated/.exec(msg)
    if (m) return new DriverError(`port ${m[1]}:${m[2]} is already in use`, false)
    m = /listen (?:tcp|udp)[46]? (.+?):(\d+): bind: address already in use/.exec(msg)
    if (m) return new DriverError(`port ${m[1]}:${m[2]} is already in use`, false)
    if (/docker-init/.test(msg) && /not found|no such file/.test(msg)) {
      return new DriverError(`docker-init is not available on this engine (use the DockerDriver option init: false): ${msg}`, false)
    }
    m = /exec: "([^"]+)": (?:stat [^:]*: no such file or directory|executable file not found in \$PATH)/.exec(msg)
    if (m) return new DriverError(`command "${m[1]}" not found in image`, false)
    m = /exec: "([^"]+)": permission denied/.exec(msg)
    if (m) return new DriverError(`command "${m[1]}" is not executable in image`, false)
    m = /Minimum memory limit allowed is (\d+)\s*MB/i.exec(msg)
    if (m) {
      const mb = spec?.task.resources.memoryMB ?? '?'
      return new DriverError(`memory limit of ${mb} MB is below docker's minimum of ${m[1]} MB`, false)
    }
    if (isConnectionError(err)) {
      return new DriverError(`docker engine not reachable at ${this.socketPath}: ${msg}`, true)
    }
    const code = statusCode(err)
    return new DriverError(msg, code === undefined || code >= 500)
  }

  async wait(handle: TaskHandle): Promise<ExitResult> {
    const container = handle.id
    const gone = () => exitResult(-1, false, `container ${handle.id.slice(0, 12)} no longer exists`)
    let failingSince: number | undefined
    let lastError = ''
    const failed = async (err: unknown): Promise<boolean> => {
      // Engine unreachable or answering errors: retry for a while, then give up.
      failingSince ??= Date.now()
      lastError = apiMessage(err)
      if (Date.now() - failingSince > this.engineRetryMs) return true
      await sleep(1000)
      return false
    }
    for (;;) {
      let code: number | undefined
      try {
        const res = await this.docker.waitContainer(container, 'not-running')
        code = res.StatusCode
      } catch (err) {
        if (statusCode(err) === 404) return gone()
        if (await failed(err)) return exitResult(-1, false, `lost contact with the docker engine: ${lastError}`)
        continue
      }
      let info: ContainerInspect
      try {
        info = await this.docker.inspectContainer(container)
      } catch (err) {
        if (statusCode(err) === 404) {
          return code === undefined ? gone() : exitResult(code, false, 'container was removed before it could be inspected')
        }
        if (await failed(err)) return exitResult(code ?? -1, false, `lost contact with the docker engine: ${lastError}`)
        continue
      }
      // Started again since the wait returned: report the exit the wait saw.
      if (info.State.Running) return exitResult(code ?? -1, false)
      if (info.State.Status === 'removing' || info.State.Dead) {
        return exitResult(info.State.ExitCode, Boolean(info.State.OOMKilled), 'container was removed while the task ran')
      }
      const oomKilled = info.State.OOMKilled || (await this.lateOomFlag(container, info))
      return exitResult(info.State.ExitCode, oomKilled, info.State.Error || undefined)
    }
  }

  /**
   * The engine learns of an OOM kill from a separate event that may be handled after the
   * exit, or lost, so after a SIGKILL-like exit of a memory-limited container OOMKilled
   * can read false. Ask the kernel log (when readable), else look again for a moment.
   */
  private async lateOomFlag(container: string, info: ContainerInspect): Promise<boolean> {
    if (info.State.ExitCode !== 137 || !info.HostConfig.Memory) return false
    // The engine sometimes loses the OOM event altogether; the kernel log does not.
    if (kernelLogShowsOomKill(info.Id)) return true
    const finished = Date.parse(info.State.FinishedAt)
    for (let i = 0; i < 5; i++) {
      if (!Number.isNaN(finished) && Date.now() - finished > 2000) return false
      await sleep(200)
      try {
        const again = await this.docker.inspectContainer(container)
        if (again.State.OOMKilled) return true
        if (again.State.Running) return false
      } catch {
        return false
      }
    }
    return false
  }

  async stop(handle: TaskHandle, timeoutMs: number): Promise<void> {
    try {
      await this.docker.stopContainer(handle.id, Math.max(0, Math.ceil(timeoutMs / 1000)))
    } catch (err) {
      const code = statusCode(err)
      if (code === 304 || code === 404) return
      throw new DriverError(`stopping container ${handle.id.slice(0, 12)}: ${apiMessage(err)}`, true)
    }
  }

  async destroy(handle: TaskHandle): Promise<void> {
    try {
      await this.docker.removeContainer(handle.id, { force: true, v: true })
    } catch (err) {
      const code = statusCode(err)
      if (code === 404) return
      // "removal of container ... is already in progress"
      if (code === 409 && /already in progress/.test(apiMessage(err))) return
      throw new DriverError(`removing container ${handle.id.slice(0, 12)}: ${apiMessage(err)}`, true)
    }
  }

  /**
   * One stream of the container's output. The engine's `tail` counts entries of both
   * streams together, so a tail of one stream is computed here: the last entries are
   * fetched with timestamps in a growing window until it holds `tail` entries of the
   * wanted stream (or the whole log); with follow, the stream then continues `since`
   * the first of them.
   */
  async logs(handle: TaskHandle, options: LogOptions): Promise<Readable> {
    const container = handle.id
    const want = options.stream
    const tail = options.tail
    try {
      if (tail === undefined || tail === 0) {
        const opts = {
          stdout: want === 'stdout',
          stderr: want === 'stderr',
          ...(tail === 0 ? { tail: 0 } : {}),
        }
        if (!options.follow) return this.demux(await this.docker.containerLogs(container, opts), want)
        return this.demux(await this.docker.followContainerLogs(container, opts), want)
      }

      const last = await this.lastEntries(container, want, tail)
      if (!options.follow) return Readable.from(last.map((e) => e.line))
      const since = last.length > 0 ? timestampToSince(last[0].ts) : undefined
      if (last.length > 0 && since === undefined) {
        throw new DriverError(`unexpected docker log timestamp "${last[0].ts}"`, false)
      }
      const source = await this.docker.followContainerLogs(container, {
        stdout: want === 'stdout',
        stderr: want === 'stderr',
        timestamps: true,
        ...(since !== undefined ? { since } : {}),
      })
      return this.demux(source, want, true)
    } catch (err) {
      if (err instanceof DriverError) throw err
      if (statusCode(err) === 404) throw new DriverError(`container ${handle.id.slice(0, 12)} no longer exists`, false)
      // e.g. 501 "configured logging driver does not support reading"
      throw new DriverError(`logs of container ${handle.id.slice(0, 12)}: ${apiMessage(err)}`, isConnectionError(err))
    }
  }

  private async lastEntries(
    container: string,
    want: LogOptions['stream'],
    tail: number,
  ): Promise<{ ts: string; line: Buffer }[]> {
    const number = streamNumber(want)
    let window = Math.max(64, tail * 2)
    for (;;) {
      const raw = await this.docker.containerLogs(container, { stdout: true, stderr: true, timestamps: true, tail: window })
      const frames = parseFrames(raw)
      const mine = frames.filter((f) => f.stream === number)
      if (mine.length >= tail || frames.length < window) {
        return mine.slice(-tail).map((f) => splitTimestamp(f.payload))
      }
      window *= 4
    }
  }

  /** A Readable of one stream; destroying it releases the engine connection. */
  private demux(raw: Readable | Buffer, want: LogOptions['stream'], stripTimestamps = false): Readable {
    const out = new DemuxTransform(want, stripTimestamps)
    if (Buffer.isBuffer(raw)) out.end(raw)
    else pipeline(raw, out, () => undefined)
    return out
  }

  async exec(handle: TaskHandle, command: string, args: readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
    const withStdin = options.stdin !== undefined
    const short = handle.id.slice(0, 12)
    const failure = (err: unknown): DriverError => {
      const code = statusCode(err)
      if (code === 404) return new DriverError(`container ${short} of task "${handle.taskName}" no longer exists`, false)
      if (code === 409 || /is not running/.test(apiMessage(err))) return new DriverError(`task "${handle.taskName}" is not running`, false)
      return new DriverError(`exec in container ${short}: ${apiMessage(err)}`, isConnectionError(err))
    }
    let exec: string
    let stream: Duplex
    try {
      exec = await this.docker.createExec(handle.id, { Cmd: [command, ...args], AttachStdout: true, AttachStderr: true, AttachStdin: withStdin, Tty: false })
      stream = await this.docker.startExec(exec, { tty: false })
    } catch (err) {
      throw failure(err)
    }
    const out = new OutputBuffer()
    const err = new OutputBuffer()
    const sink = (name: LogStream, buf: OutputBuffer) => (chunk: Buffer) => {
      buf.add(chunk)
      options.onOutput?.(name, chunk)
    }
    demuxStream(stream, sink('stdout', out), sink('stderr', err))
    const ended = new Promise<'ended'>((resolve) => {
      stream.once('end', () => resolve('ended'))
      stream.once('close', () => resolve('ended'))
      stream.once('error', () => resolve('ended'))
    })
    if (withStdin) stream.end(options.stdin)
    const outcome = await raceDeadline(ended, options.timeoutMs, options.signal)
    if (outcome !== 'ended') {
      stream.destroy()
      // The engine cannot kill an exec: kill its process from the host (best effort).
      const info = await this.docker.inspectExec(exec).catch(() => undefined)
      if (info?.Running && info.Pid > 0) {
        try {
          process.kill(info.Pid, 'SIGKILL')
        } catch {
          // not ours to kill (rootless, remote engine): it finishes on its own
        }
      }
      return { exitCode: -1, stdout: out.toString(), stderr: err.toString(), timedOut: true }
    }
    // The output can end a moment before the engine records the exit code.
    for (let i = 0; i < 50; i++) {
      const info = await this.docker.inspectExec(exec).catch((e: unknown) => {
        throw failure(e)
      })
      if (!info.Running && info.ExitCode !== null) return { exitCode: info.ExitCode, stdout: out.toString(), stderr: err.toString() }
      await sleep(20)
    }
    return { exitCode: -1, stdout: out.toString(), stderr: err.toString(), timedOut: true }
  }

  async execSession(handle: TaskHandle, command: string, args: readonly string[], options: ExecSessionOptions): Promise<ExecSession> {
    const short = handle.id.slice(0, 12)
    let exec: string
    let stream: Duplex
    try {
      exec = await this.docker.createExec(handle.id, { Cmd: [command, ...args], AttachStdin: options.stdin, AttachStdout: true, AttachStderr: true, Tty: options.tty })
      stream = await this.docker.startExec(exec, { tty: options.tty })
    } catch (err) {
      const code = statusCode(err)
      if (code === 404) throw new DriverError(`container ${short} of task "${handle.taskName}" no longer exists`, false)
      if (code === 409 || /is not running/.test(apiMessage(err))) throw new DriverError(`task "${handle.taskName}" is not running`, false)
      throw new DriverError(`exec in container ${short}: ${apiMessage(err)}`, isConnectionError(err))
    }
    const resize = async (rows: number, cols: number) => {
      await this.docker.resizeExec(exec, rows, cols).catch(() => undefined)
    }
    // Engines before API 1.42 take no size at create: set it at once (the command may read it first).
    if (options.tty) await resize(options.rows, options.cols)
    let stdout: Readable = stream
    let stderr: Readable | undefined
    if (!options.tty) {
      const out = new PassThrough()
      const err = new PassThrough()
      demuxStream(stream, (chunk) => out.write(chunk), (chunk) => err.write(chunk))
      stream.once('end', () => {
        out.end()
        err.end()
      })
      stdout = out
      stderr = err
    }
    const ended = new Promise<void>((resolve) => {
      stream.once('end', resolve)
      stream.once('close', resolve)
      stream.once('error', () => resolve())
    })
    return {
      ...(options.stdin ? { stdin: stream } : {}),
      stdout,
      ...(stderr ? { stderr } : {}),
      resize,
      wait: async () => {
        await ended
        // The output can end a moment before the engine records the exit code.
        for (let i = 0; i < 50; i++) {
          const info = await this.docker.inspectExec(exec).catch(() => undefined)
          if (info && !info.Running && info.ExitCode !== null) return info.ExitCode
          await sleep(20)
        }
        return -1
      },
      kill: () => {
        stream.destroy()
        void this.docker.inspectExec(exec).then((info) => {
          if (info.Running && info.Pid > 0) process.kill(info.Pid, 'SIGKILL')
        }).catch(() => undefined)
      },
    }
  }

  /** One sample from the engine's stats API (it compares two readings about a second apart). */
  async stats(handle: TaskHandle): Promise<TaskStats> {
    let s: ContainerStats
    try {
      s = await this.docker.containerStats(handle.id)
    } catch (err) {
      if (statusCode(err) === 404) throw new DriverError(`container ${handle.id.slice(0, 12)} of task "${handle.taskName}" no longer exists`, false)
      throw new DriverError(`stats of container ${handle.id.slice(0, 12)}: ${apiMessage(err)}`, isConnectionError(err))
    }
    const cpu = s.cpu_stats
    const pre = s.precpu_stats
    const cpuDelta = (cpu?.cpu_usage?.total_usage ?? 0) - (pre?.cpu_usage?.total_usage ?? 0)
    const systemDelta = (cpu?.system_cpu_usage ?? 0) - (pre?.system_cpu_usage ?? 0)
    const cores = cpu?.online_cpus || cpu?.cpu_usage?.percpu_usage?.length || 1
    const cpuPercent = cpuDelta > 0 && systemDelta > 0 ? (cpuDelta / systemDelta) * cores * 100 : 0
    const mem = s.memory_stats
    // cgroup v1 reports rss; v2 reports anon.
    const rss = mem?.stats?.total_rss ?? mem?.stats?.rss ?? mem?.stats?.anon ?? 0
    if (!s.read || Date.parse(s.read) <= 0) throw new DriverError(`task "${handle.taskName}" is not running`, false)
    return { cpuPercent, memoryRssBytes: rss, ...(mem?.usage !== undefined ? { memoryUsageBytes: mem.usage } : {}), timestamp: Date.parse(s.read) }
  }

  /**
   * The allocation's pause container: it owns the group's network namespace and
   * publishes its ports; the tasks join it (NetworkMode container:<id>) and talk
   * over localhost. Re-attaches to an existing one; starts it again if stopped.
   */
  async createNetwork(spec: GroupNetworkSpec): Promise<GroupNetwork> {
    const name = pauseContainerName(spec.allocId)
    const previous = this.starting.get(name) ?? Promise.resolve()
    const run = previous.catch(() => undefined).then(() => this.createNetworkLocked(spec, name))
    this.starting.set(name, run)
    try {
      return await run
    } finally {
      if (this.starting.get(name) === run) this.starting.delete(name)
    }
  }

  private async createNetworkLocked(spec: GroupNetworkSpec, name: string): Promise<GroupNetwork> {
    const fail = (err: unknown) => {
      const e = this.mapError(err, undefined)
      return new DriverError(`pause container: ${e.message}`, e.recoverable)
    }
    const found = (info: ContainerInspect, existing: boolean): GroupNetwork =>
      ({ id: info.Id, networkMode: `container:${info.Id}`, existing, ...(info.State.Pid > 0 ? { pid: info.State.Pid } : {}) })
    let existing: ContainerInspect | undefined
    try {
      existing = await this.docker.inspectContainer(name)
    } catch (err) {
      if (statusCode(err) !== 404) throw fail(err)
    }
    if (existing?.State.Running) return found(existing, true)
    if (existing) {
      try {
        await this.docker.startContainer(existing.Id)
        return found(await this.docker.inspectContainer(existing.Id), true)
      } catch (err) {
        throw fail(err)
      }
    }
    const image = this.pauseImage ?? spec.image
    let imageInfo: ImageInspect
    try {
      imageInfo = await this.ensureImage(image, undefined)
    } catch (err) {
      throw fail(err)
    }
    const { exposed, bindings } = publishedPorts(spec.ports)
    let container: string
    try {
      container = await this.docker.createContainer({
        name,
        Image: image,
        Cmd: this.pauseCommand,
        Labels: { [LABEL_ALLOC]: spec.allocId, [LABEL_JOB]: spec.jobId, [LABEL_GROUP]: spec.group, [LABEL_NODE]: spec.nodeId, [LABEL_PAUSE]: '1' },
        ExposedPorts: exposed,
        HostConfig: { PortBindings: bindings, Init: this.init, CpuShares: 2, Memory: 16 * 1024 * 1024, MemorySwap: 16 * 1024 * 1024 },
      })
    } catch (err) {
      throw fail(err)
    }
    try {
      await this.checkCommand(container, imageInfo, this.pauseCommand, {})
      await this.docker.startContainer(container)
      return found(await this.docker.inspectContainer(container), false)
    } catch (err) {
      await this.docker.removeContainer(container, { force: true, v: true }).catch(() => undefined)
      if (err instanceof DriverError) {
        const hint = this.pauseImage ? '' : ' (set SHOAL_DOCKER_PAUSE_IMAGE to an image that has it)'
        throw new DriverError(`pause container: ${err.message.replace(/ in image$/, ` in image "${image}"`)}${hint}`, err.recoverable)
      }
      throw fail(err)
    }
  }

  async destroyNetwork(allocId: string): Promise<void> {
    const remove = async (idOrName: string) => {
      try {
        await this.docker.removeContainer(idOrName, { force: true, v: true })
      } catch (err) {
        const code = statusCode(err)
        if (code === 404 || (code === 409 && /already in progress/.test(apiMessage(err)))) return
        throw new DriverError(`removing pause container of allocation ${allocId}: ${apiMessage(err)}`, true)
      }
    }
    await remove(pauseContainerName(allocId))
    // Whatever else is labelled as this allocation's pause container.
    const list = await this.docker.listContainers({ all: true, filters: { label: [`${LABEL_ALLOC}=${allocId}`, `${LABEL_PAUSE}=1`] } })
    for (const c of list) await remove(c.Id)
  }

  async recoverNetworks(nodeId: string): Promise<string[]> {
    const list = await this.docker.listContainers({ all: true, filters: { label: [`${LABEL_NODE}=${nodeId}`, `${LABEL_PAUSE}=1`] } })
    return list.map((c) => c.Labels[LABEL_ALLOC]).filter((id): id is string => Boolean(id))
  }

  async recover(nodeId: string): Promise<RecoveredTask[]> {
    const list = await this.docker.listContainers({ all: true, filters: { label: [`${LABEL_NODE}=${nodeId}`] } })
    const tasks: RecoveredTask[] = []
    for (const summary of list) {
      const allocId = summary.Labels[LABEL_ALLOC]
      const taskName = summary.Labels[LABEL_TASK]
      if (!allocId || !taskName) continue
      let info: ContainerInspect
      try {
        info = await this.docker.inspectContainer(summary.Id)
      } catch (err) {
        if (statusCode(err) === 404) continue // removed meanwhile
        throw err
      }
      tasks.push({
        allocId,
        taskName,
        handle: this.handleOf(info, allocId, taskName),
        running: info.State.Running,
      })
    }
    return tasks
  }
}

class PullError extends Error {
  override name = 'PullError'
}
