// The exec task driver: plain host processes for hosts without Docker.
//
// Like Nomad's executor, a task outlives the agent that started it. Each task runs
// under a tiny /bin/sh wrapper, started detached in a session (and process group) of
// its own, with stdout/stderr going straight to files in the alloc dir:
//
//   sh -c WRAPPER shoal-exec <stateDir>/<key> <cgroup dir or ""> <command> <args...>
//
// The wrapper runs the command in the foreground, then writes its exit status to
// `<stateDir>/<key>.<wrapper pid>.exit`, which any later agent can read. Stop signals
// go to the whole process group; the wrapper traps them (a trap, not an ignore, so the
// command gets default dispositions) and outlives the command to record its status.
// A handle file `<stateDir>/<key>.json` (pid, /proc start time, boot id, node, alloc,
// task) lets recover() find tasks again and guards against pid reuse.
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { constants as fsConstants, readFileSync, readlinkSync, statSync } from 'node:fs'
import { access, mkdir, readdir, readFile, rename, rm, rmdir, stat, writeFile } from 'node:fs/promises'
import { delimiter, join, resolve as resolvePath } from 'node:path'
import type { Readable } from 'node:stream'
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
  type LogOptions,
  type RecoveredTask,
  type TaskHandle,
  type TaskStartSpec,
  type TaskStats,
} from './driver.ts'
import { DEFAULT_TASK_LOGS } from '../structs/index.ts'
import { RotatedLogStream, rotatedFiles, tailPosition } from './file-log.ts'
import { CPU_PERIOD_US, cpuQuota } from './limits.ts'
import { bootId, CLOCK_TICKS_PER_SECOND, isRunning, processGroupMembers, readCpuTicks, readCwd, readEnviron, readProcStat, readRssBytes, signalProcess } from './proc.ts'

export interface ExecDriverOptions {
  /** Directory for handle and exit-status files; created when missing. */
  stateDir: string
  /**
   * Root of the cgroup v2 hierarchy; default /sys/fs/cgroup. Tasks get a cgroup
   * `<root>/shoal/<alloc>+<task>` with memory.max / cpu.weight when the host allows it.
   */
  cgroupRoot?: string
  /** Set false to never touch cgroups. Default true (best-effort). */
  cgroups?: boolean
  /** How often recovered processes and followed log files are polled; default 150 ms. */
  pollIntervalMs?: number
}

const SHELL = '/bin/sh'
const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'

/**
 * $1 status file prefix, $2 cgroup dir ('' for none), $3 log file prefix, $4 bytes per log
 * file, $5 log files kept per stream, then the command and its args.
 *
 * The command writes into two FIFOs; a reader per stream (part of the wrapper, so it
 * outlives the agent as the task does) writes `<prefix>.<stream>.<n>`, a new n at each
 * start, moving to n+1 at the size limit and deleting what is max_files behind. It copies
 * with dd, which writes what each read returns at once (head -c would hold it in a stdio
 * buffer) and never reads more than count × bs bytes, so a file ends exactly at the limit
 * and no byte is lost between files; "records in" fewer than count means the end of the
 * input. The readers ignore stop signals (the task can still log while it shuts down)
 * and end when the last writer closes its end (SIGKILL of the group ends them too).
 * Needs mkfifo, dd and a sleep that takes fractions (coreutils or busybox).
 */
const WRAPPER = [
  'status="$1.$$.exit"; fifo="$1.$$"; cg="$2"; logs="$3"; max_bytes="$4"; max_files="$5"; shift 5',
  'if [ -n "$cg" ]; then echo $$ > "$cg/cgroup.procs" 2>/dev/null || :; fi',
  'rotate() {',
  '  trap "" TERM INT HUP QUIT',
  '  base="$1"; i=-1',
  '  for f in "$base".*; do n="${f##*.}"; case "$n" in ""|*[!0-9]*) continue;; esac; [ "$n" -gt "$i" ] && i="$n"; done',
  '  i=$((i + 1)); room="$max_bytes"',
  '  for f in "$base".*; do n="${f##*.}"; case "$n" in ""|*[!0-9]*) continue;; esac; [ "$n" -le $((i - max_files)) ] && rm -f "$f"; done',
  '  while :; do',
  '    bs=4096; [ "$room" -lt $bs ] && bs="$room"',
  '    count=$((room / bs))',
  '    out=$(LC_ALL=C dd bs="$bs" count="$count" 2>&1 >> "$base.$i") || exit 0',
  // "F+P records in", "F+P records out", "N bytes ... copied", after warnings about partial reads.
  '    recs=${out%% records in*}; recs=${recs##*[!0-9+]}; recs=$((${recs%+*} + ${recs#*+}))',
  '    copied=${out##*records out}; copied=${copied%% bytes*}; copied=${copied##*[!0-9]}',
  '    room=$((room - copied))',
  '    [ "$recs" -lt "$count" ] && exit 0',
  '    if [ "$room" -le 0 ]; then i=$((i + 1)); room="$max_bytes"; rm -f "$base.$((i - max_files))"; fi',
  '  done',
  '}',
  'rm -f "$fifo.out" "$fifo.err"',
  'mkfifo "$fifo.out" "$fifo.err" 2>/dev/null || { echo "shoal-exec: cannot create $fifo.out and $fifo.err" >> "$logs.stderr.0"; exit 125; }',
  'rotate "$logs.stdout" < "$fifo.out" & r1=$!',
  'rotate "$logs.stderr" < "$fifo.err" & r2=$!',
  'trap : TERM INT HUP QUIT',
  // In a subshell: dash would point the wrapper's own stderr at the FIFO while the command
  // runs, and its "Killed" note after a SIGKILL would then die of SIGPIPE.
  '("$@" > "$fifo.out" 2> "$fifo.err")',
  'rc=$?',
  'rm -f "$fifo.out" "$fifo.err"',
  // The output is in the files before the exit is recorded; up to 2 s, as a process the
  // command left behind may hold the pipes open (it keeps logging, the exit is still reported).
  'n=0; while [ $n -lt 40 ] && { kill -0 $r1 || kill -0 $r2; } 2>/dev/null; do sleep 0.05; n=$((n + 1)); done',
  'echo "$rc" > "$status"',
  'exit "$rc"',
].join('\n')

/** What the handle file under stateDir holds. */
interface HandleRecord {
  version: 1
  nodeId: string
  allocId: string
  jobId: string
  group: string
  taskName: string
  pid: number
  /** /proc/<pid>/stat start time ('' when the process had already exited). */
  startTime: string
  bootId: string
  startedAt: number
  allocDir: string
  command: string
  args: string[]
  cgroup?: string
}

interface ChildExit {
  code: number | null
  signal: NodeJS.Signals | null
}

type CgroupSupport = { ok: true; parent: string } | { ok: false; reason: string }

const SIGNAL_NUMBERS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGTERM: 15 }

function taskKey(allocId: string, taskName: string): string {
  return `${encodeURIComponent(allocId)}+${encodeURIComponent(taskName)}`
}

function exitResult(exitCode: number, oomKilled: boolean, error?: string): ExitResult {
  const result: ExitResult = { exitCode, oomKilled }
  if (exitCode > 128 && exitCode <= 128 + 64) result.signal = exitCode - 128
  if (error) result.error = error
  return result
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

export class ExecDriver implements Driver {
  readonly name = 'exec' as const
  private readonly stateDir: string
  private readonly cgroupRoot: string
  private readonly useCgroups: boolean
  private readonly pollMs: number
  /** Wrappers this instance spawned: their exit is an event, not a poll. */
  private readonly children = new Map<number, { exit: Promise<ChildExit>; done: boolean }>()
  private readonly waits = new Map<string, Promise<ExitResult>>()
  private readonly starting = new Map<string, Promise<unknown>>()
  /** Alloc dirs of tasks seen by this instance, for logs() after destroy(). */
  private readonly allocDirs = new Map<string, string>()
  private cgroupSupport: Promise<CgroupSupport> | undefined
  private lastCgroupError: string | undefined

  constructor(options: ExecDriverOptions) {
    if (!options?.stateDir) throw new Error('ExecDriver needs a stateDir')
    this.stateDir = resolvePath(options.stateDir)
    this.cgroupRoot = options.cgroupRoot ?? '/sys/fs/cgroup'
    this.useCgroups = options.cgroups ?? true
    this.pollMs = options.pollIntervalMs ?? 150
  }

  async fingerprint(): Promise<DriverFingerprint> {
    if (process.platform !== 'linux') {
      return { healthy: false, detail: `exec driver needs Linux, not ${process.platform}`, attributes: {} }
    }
    try {
      await access(SHELL, fsConstants.X_OK)
    } catch {
      return { healthy: false, detail: `${SHELL} is missing`, attributes: {} }
    }
    const cg = await this.cgroups()
    const cgroups = cg.ok ? (this.lastCgroupError ? `v2 (last error: ${this.lastCgroupError})` : 'v2') : `unavailable: ${cg.reason}`
    return {
      healthy: true,
      detail: cg.ok ? 'exec driver ready, cgroup v2 limits enforced' : 'exec driver ready, no resource limits',
      attributes: {
        'driver.exec': '1',
        'driver.exec.shell': SHELL,
        'driver.exec.cgroups': cgroups,
        ...(cg.ok ? { 'driver.exec.cgroup_parent': cg.parent } : {}),
      },
    }
  }

  async start(spec: TaskStartSpec): Promise<TaskHandle> {
    if (spec.task.driver !== 'exec') {
      throw new DriverError(`task "${spec.task.name}" uses the ${spec.task.driver} driver, not exec`)
    }
    const key = taskKey(spec.allocId, spec.task.name)
    const previous = this.starting.get(key) ?? Promise.resolve()
    const run = previous.catch(() => undefined).then(() => this.startLocked(spec, key))
    this.starting.set(key, run)
    try {
      return await run
    } finally {
      if (this.starting.get(key) === run) this.starting.delete(key)
    }
  }

  private async startLocked(spec: TaskStartSpec, key: string): Promise<TaskHandle> {
    const task = spec.task
    if (task.driver !== 'exec') throw new DriverError('not an exec task')
    this.allocDirs.set(key, spec.allocDir)

    const existing = await this.readRecord(key)
    if (existing && this.recordRunning(existing)) return this.handleOf(existing)

    const env: Record<string, string> = { PATH: process.env.PATH || DEFAULT_PATH, ...spec.env }
    const allocDir = resolvePath(spec.allocDir)
    try {
      if (!statSync(allocDir).isDirectory()) throw new Error('not a directory')
    } catch {
      throw new DriverError(`alloc dir "${allocDir}" does not exist`, true)
    }
    const command = await resolveCommand(task.config.command, allocDir, env.PATH)

    await mkdir(this.stateDir, { recursive: true })
    const logDir = join(allocDir, 'logs')
    await mkdir(logDir, { recursive: true })
    const cgroup = await this.prepareCgroup(key, task.resources.cpu, task.resources.memoryMB, task.resources.memoryMaxMB, task.config.cpuHardLimit ?? false)

    const logs = task.logs ?? DEFAULT_TASK_LOGS
    const child = spawn(SHELL, ['-c', WRAPPER, 'shoal-exec', join(this.stateDir, key), cgroup ?? '', join(logDir, task.name),
      String(logs.maxFileSizeMB * 1024 * 1024), String(logs.maxFiles), command, ...task.config.args], {
      cwd: allocDir,
      env,
      detached: true,
      stdio: 'ignore',
    })
    // Read synchronously, before the event loop can reap an already-finished child.
    const startTime = child.pid === undefined ? '' : readProcStat(child.pid)?.startTime ?? ''
    const pid = child.pid
    if (pid === undefined) {
      const reason = await new Promise<string>((resolve) => {
        child.once('error', (e) => resolve(e.message))
        setTimeout(() => resolve('unknown error'), 1000).unref()
      })
      if (cgroup) await rmdir(cgroup).catch(() => undefined)
      throw new DriverError(`could not start ${SHELL}: ${reason}`, true)
    }
    child.on('error', () => undefined)
    const tracked = {
      done: false,
      exit: new Promise<ChildExit>((resolve) =>
        child.once('exit', (code, signal) => {
          tracked.done = true
          resolve({ code, signal })
        }),
      ),
    }
    this.children.set(pid, tracked)
    child.unref()

    const record: HandleRecord = {
      version: 1,
      nodeId: spec.nodeId,
      allocId: spec.allocId,
      jobId: spec.jobId,
      group: spec.group,
      taskName: task.name,
      pid,
      startTime,
      bootId: bootId(),
      startedAt: Date.now(),
      allocDir,
      command,
      args: task.config.args,
      ...(cgroup ? { cgroup } : {}),
    }
    await this.writeRecord(key, record)
    if (existing && existing.pid !== pid) await rm(this.statusFile(key, existing.pid), { force: true })
    return this.handleOf(record)
  }

  private handleOf(record: HandleRecord): TaskHandle {
    return {
      driver: 'exec',
      id: String(record.pid),
      allocId: record.allocId,
      taskName: record.taskName,
      startedAt: record.startedAt,
    }
  }

  private recordRunning(record: HandleRecord): boolean {
    if (!record.startTime || record.bootId !== bootId()) return false
    return isRunning(record.pid, record.startTime)
  }

  private recordPath(key: string): string {
    return join(this.stateDir, `${key}.json`)
  }

  private statusFile(key: string, pid: number): string {
    return join(this.stateDir, `${key}.${pid}.exit`)
  }

  private async readRecord(key: string): Promise<HandleRecord | undefined> {
    return readRecordFile(this.recordPath(key))
  }

  private async writeRecord(key: string, record: HandleRecord): Promise<void> {
    const path = this.recordPath(key)
    const tmp = `${path}.${process.pid}.tmp`
    await writeFile(tmp, JSON.stringify(record, null, 2) + '\n')
    await rename(tmp, path)
  }

  /** The record of `handle` when it still describes the same process. */
  private async recordOf(handle: TaskHandle): Promise<HandleRecord | undefined> {
    const record = await this.readRecord(taskKey(handle.allocId, handle.taskName))
    return record && String(record.pid) === handle.id ? record : undefined
  }

  /** Whether the process of `handle` still runs. */
  private running(pid: number, record: HandleRecord | undefined): boolean {
    if (record) return this.recordRunning(record)
    // No record (destroyed): only a child of ours can still be checked safely.
    const child = this.children.get(pid)
    return child !== undefined && !child.done
  }

  /** Waits up to `timeoutMs` for the process to be gone; true if it is. */
  private async exited(pid: number, record: HandleRecord | undefined, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      if (!this.running(pid, record)) return true
      if (Date.now() >= deadline) return false
      await sleep(Math.min(50, Math.max(1, deadline - Date.now())))
    }
  }

  wait(handle: TaskHandle): Promise<ExitResult> {
    const id = `${taskKey(handle.allocId, handle.taskName)}:${handle.id}`
    let waiting = this.waits.get(id)
    if (!waiting) {
      waiting = this.waitFor(handle)
      this.waits.set(id, waiting)
      // Later waits read the status file again (it may be gone after destroy).
      void waiting.finally(() => this.waits.delete(id))
    }
    return waiting
  }

  private async waitFor(handle: TaskHandle): Promise<ExitResult> {
    const key = taskKey(handle.allocId, handle.taskName)
    const pid = Number(handle.id)
    const child = this.children.get(pid)
    let childExit: ChildExit | undefined
    let record: HandleRecord | undefined
    if (child) {
      childExit = await child.exit
      record = await this.recordOf(handle)
    } else {
      record = await this.recordOf(handle)
      while (record && this.recordRunning(record)) {
        await sleep(this.pollMs)
      }
    }

    let text: string | undefined
    try {
      text = await readFile(this.statusFile(key, pid), 'utf8')
    } catch {
      text = undefined
    }
    const oomKilled = record?.cgroup ? await cgroupOomKilled(record.cgroup) : false
    const code = text === undefined ? NaN : Number.parseInt(text.trim(), 10)
    if (!Number.isNaN(code)) return exitResult(code, oomKilled)

    if (childExit) {
      const signal = childExit.signal ? SIGNAL_NUMBERS[childExit.signal] : undefined
      const exitCode = childExit.code ?? (signal !== undefined ? 128 + signal : -1)
      return exitResult(exitCode, oomKilled, `the task's wrapper exited (${childExit.signal ?? `code ${childExit.code}`}) without recording an exit status`)
    }
    if (!record) return exitResult(-1, false, `no record of process ${handle.id} of task "${handle.taskName}" (destroyed?)`)
    if (record.bootId !== bootId()) return exitResult(-1, false, 'the host rebooted while the task ran')
    return exitResult(-1, oomKilled, `process ${handle.id} exited without recording an exit status`)
  }

  async stop(handle: TaskHandle, timeoutMs: number): Promise<void> {
    const pid = Number(handle.id)
    const record = await this.recordOf(handle)
    if (!this.running(pid, record)) {
      await this.killGroup(pid, record)
      return
    }
    signalProcess(-pid, 'SIGTERM')
    if (!(await this.exited(pid, record, timeoutMs))) {
      // SIGKILL everything but the wrapper so that it still records the status...
      for (const member of processGroupMembers(pid)) if (member !== pid) signalProcess(member, 'SIGKILL')
      if (!(await this.exited(pid, record, 1000))) {
        // ...and the wrapper too if it does not exit by itself.
        signalProcess(-pid, 'SIGKILL')
        await this.exited(pid, record, 2000)
      }
    }
    // Whatever the task left behind in its process group.
    await this.killGroup(pid, record)
  }

  /** SIGKILLs what remains of the task's process group once the wrapper is gone, and waits (up to 1 s) for it to be gone. */
  private async killGroup(pid: number, record: HandleRecord | undefined): Promise<void> {
    // A pgid stays reserved while any member lives, so this cannot hit a stranger;
    // without a record (or after a reboot) we cannot be sure the group is ours.
    if (!record || record.bootId !== bootId()) return
    if (processGroupMembers(pid).length === 0) return
    signalProcess(-pid, 'SIGKILL')
    for (let i = 0; i < 50 && processGroupMembers(pid).length > 0; i++) await sleep(20)
  }

  async destroy(handle: TaskHandle): Promise<void> {
    const key = taskKey(handle.allocId, handle.taskName)
    const pid = Number(handle.id)
    const record = await this.recordOf(handle)
    if (record) {
      if (this.recordRunning(record)) {
        signalProcess(-pid, 'SIGKILL')
        await this.exited(pid, record, 2000)
      }
      await this.killGroup(pid, record)
      if (record.cgroup) await rmdir(record.cgroup).catch(() => undefined)
      this.allocDirs.set(key, record.allocDir)
      await rm(this.recordPath(key), { force: true })
    }
    // Exit-status files and log FIFOs of this task (any pid).
    let entries: string[] = []
    try {
      entries = await readdir(this.stateDir)
    } catch {
      return
    }
    await Promise.all(
      entries
        .filter((e) => e.startsWith(`${key}.`) && /\.(exit|out|err)$/.test(e))
        .map((e) => rm(join(this.stateDir, e), { force: true })),
    )
  }

  async logs(handle: TaskHandle, options: LogOptions): Promise<Readable> {
    const key = taskKey(handle.allocId, handle.taskName)
    const allocDir = (await this.readRecord(key))?.allocDir ?? this.allocDirs.get(key)
    if (!allocDir) throw new DriverError(`no record of task "${handle.taskName}" of alloc ${handle.allocId}`, false)
    const base = join(allocDir, 'logs', `${handle.taskName}.${options.stream}`)
    const start = options.tail === undefined ? undefined : await tailPosition(await rotatedFiles(base), options.tail)
    return new RotatedLogStream(base, { ...(start ? { start } : {}), follow: options.follow, pollMs: this.pollMs })
  }

  /** What a command run inside the running task gets: the task's environment and working directory, and the resolved program. */
  private async commandInTask(handle: TaskHandle, command: string): Promise<{ env: NodeJS.ProcessEnv; cwd: string; program: string }> {
    const pid = Number(handle.id)
    const record = await this.recordOf(handle)
    if (!this.running(pid, record)) throw new DriverError(`task "${handle.taskName}" is not running`, false)
    const env = readEnviron(pid) ?? { PATH: process.env.PATH || DEFAULT_PATH }
    const cwd = readCwd(pid) ?? record?.allocDir
    if (!cwd) throw new DriverError(`no working directory known for task "${handle.taskName}"`, false)
    return { env, cwd, program: await resolveCommand(command, cwd, env.PATH) }
  }

  /** Runs a command as the task would: its environment, its working directory. */
  async exec(handle: TaskHandle, command: string, args: readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
    const { env, cwd, program } = await this.commandInTask(handle, command)
    const withStdin = options.stdin !== undefined
    const child = spawn(program, [...args], { cwd, env, detached: true, stdio: [withStdin ? 'pipe' : 'ignore', 'pipe', 'pipe'] })
    const out = new OutputBuffer()
    const err = new OutputBuffer()
    child.stdout?.on('data', (chunk: Buffer) => {
      out.add(chunk)
      options.onOutput?.('stdout', chunk)
    })
    child.stderr?.on('data', (chunk: Buffer) => {
      err.add(chunk)
      options.onOutput?.('stderr', chunk)
    })
    if (withStdin) {
      child.stdin?.on('error', () => undefined)
      child.stdin?.end(options.stdin)
    }
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null } | Error>((resolve) => {
      child.once('error', resolve)
      child.once('close', (code, signal) => resolve({ code, signal }))
    })
    const outcome = await raceDeadline(exited, options.timeoutMs, options.signal)
    if (outcome === 'timeout' || outcome === 'aborted') {
      if (child.pid !== undefined) signalProcess(-child.pid, 'SIGKILL')
      return { exitCode: -1, stdout: out.toString(), stderr: err.toString(), timedOut: true }
    }
    if (outcome instanceof Error) throw new DriverError(`could not run "${command}": ${outcome.message}`, false)
    const signal = outcome.signal ? SIGNAL_NUMBERS[outcome.signal] : undefined
    const exitCode = outcome.code ?? (signal !== undefined ? 128 + signal : -1)
    return { exitCode, stdout: out.toString(), stderr: err.toString() }
  }

  /**
   * A live session in the task's environment and working directory. With a tty the
   * command runs on a pseudo-terminal that util-linux `script` opens (node has no pty of
   * its own): `script -qfec` passes the command's exit code on, and `stty` sets the window
   * size first (and again on resize, on the terminal the command holds as its stdin).
   */
  async execSession(handle: TaskHandle, command: string, args: readonly string[], options: ExecSessionOptions): Promise<ExecSession> {
    const { env, cwd, program } = await this.commandInTask(handle, command)
    let child: ChildProcess
    if (options.tty) {
      const script = await resolveCommand('script', '/', process.env.PATH || DEFAULT_PATH).catch(() => {
        throw new DriverError('a terminal for exec tasks needs "script" (util-linux) on the host', false)
      })
      const line = `stty rows ${options.rows} cols ${options.cols} 2>/dev/null; exec ${[program, ...args].map(shellQuote).join(' ')}`
      child = spawn(script, ['-qfec', line, '/dev/null'], { cwd, env: { ...env, SHELL: SHELL }, detached: true, stdio: ['pipe', 'pipe', 'pipe'] })
    } else {
      child = spawn(program, [...args], { cwd, env, detached: true, stdio: [options.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'] })
    }
    const exited = new Promise<number>((resolve) => {
      child.once('error', () => resolve(-1))
      child.once('close', (code, signal) => resolve(code ?? (signal ? 128 + (SIGNAL_NUMBERS[signal] ?? 0) : -1)))
    })
    child.stdin?.on('error', () => undefined)
    return {
      ...(options.stdin && child.stdin ? { stdin: child.stdin } : {}),
      stdout: child.stdout!,
      stderr: child.stderr!,
      resize: async (rows, cols) => {
        const terminal = child.pid === undefined || !options.tty ? undefined : terminalOfChild(child.pid)
        if (terminal) await new Promise((resolve) => execFile('stty', ['-F', terminal, 'rows', String(rows), 'cols', String(cols)], resolve))
      },
      wait: () => exited,
      // script's command has a session of its own: it gets SIGHUP when script's terminal closes.
      kill: () => {
        if (child.pid !== undefined) signalProcess(-child.pid, 'SIGKILL')
      },
    }
  }

  /** CPU and RSS of the task's process group, from /proc, over a half-second sample. */
  async stats(handle: TaskHandle): Promise<TaskStats> {
    const pid = Number(handle.id)
    const record = await this.recordOf(handle)
    if (!this.running(pid, record)) throw new DriverError(`task "${handle.taskName}" is not running`, false)
    const ticks = () => processGroupMembers(pid).reduce((n, p) => n + (readCpuTicks(p) ?? 0), 0)
    const t0 = performance.now()
    const before = ticks()
    await sleep(500)
    const after = ticks()
    const seconds = (performance.now() - t0) / 1000
    const members = processGroupMembers(pid)
    const rss = members.reduce((n, p) => n + (readRssBytes(p) ?? 0), 0)
    const cpuPercent = Math.max(0, ((after - before) / CLOCK_TICKS_PER_SECOND / seconds) * 100)
    const usage = record?.cgroup ? await readFile(join(record.cgroup, 'memory.current'), 'utf8').then((t) => Number(t.trim()), () => undefined) : undefined
    return { cpuPercent, memoryRssBytes: rss, ...(usage !== undefined && Number.isFinite(usage) ? { memoryUsageBytes: usage } : {}), timestamp: Date.now() }
  }

  async recover(nodeId: string): Promise<RecoveredTask[]> {
    let entries: string[]
    try {
      entries = await readdir(this.stateDir)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
      throw err
    }
    const tasks: RecoveredTask[] = []
    for (const entry of entries.sort()) {
      if (!entry.endsWith('.json')) continue
      const record = await readRecordFile(join(this.stateDir, entry))
      if (!record || record.nodeId !== nodeId) continue
      this.allocDirs.set(taskKey(record.allocId, record.taskName), record.allocDir)
      tasks.push({
        allocId: record.allocId,
        taskName: record.taskName,
        handle: this.handleOf(record),
        running: this.recordRunning(record),
      })
    }
    return tasks
  }

  // ---- cgroup v2 (best-effort) ----

  private cgroups(): Promise<CgroupSupport> {
    this.cgroupSupport ??= this.detectCgroups()
    return this.cgroupSupport
  }

  private async detectCgroups(): Promise<CgroupSupport> {
    if (!this.useCgroups) return { ok: false, reason: 'disabled' }
    let controllers: string[]
    try {
      controllers = (await readFile(join(this.cgroupRoot, 'cgroup.controllers'), 'utf8')).trim().split(/\s+/)
    } catch {
      return { ok: false, reason: `no cgroup v2 hierarchy at ${this.cgroupRoot} (cgroup v1 or hybrid host)` }
    }
    const missing = ['memory', 'cpu'].filter((c) => !controllers.includes(c))
    if (missing.length > 0) {
      return { ok: false, reason: `cgroup v2 at ${this.cgroupRoot} lacks the ${missing.join(' and ')} controller` }
    }
    const parent = join(this.cgroupRoot, 'shoal')
    try {
      await writeFile(join(this.cgroupRoot, 'cgroup.subtree_control'), '+memory +cpu')
      await mkdir(parent, { recursive: true })
      await writeFile(join(parent, 'cgroup.subtree_control'), '+memory +cpu')
    } catch (err) {
      return { ok: false, reason: `cannot set up ${parent}: ${(err as Error).message}` }
    }
    return { ok: true, parent }
  }

  /** Creates the task's cgroup with its limits; undefined (task runs unlimited) on failure. */
  private async prepareCgroup(key: string, cpu: number, memoryMB: number, memoryMaxMB?: number, cpuHardLimit = false): Promise<string | undefined> {
    const support = await this.cgroups()
    if (!support.ok) return undefined
    const dir = join(support.parent, key)
    try {
      await mkdir(dir, { recursive: true })
      if (memoryMB > 0) {
        // memory_max: the hard limit above the reservation, which the kernel protects (memory.low).
        const hard = memoryMaxMB !== undefined && memoryMaxMB > memoryMB ? memoryMaxMB : memoryMB
        await writeFile(join(dir, 'memory.max'), String(Math.round(hard * 1024 * 1024)))
        if (hard > memoryMB) await writeFile(join(dir, 'memory.low'), String(Math.round(memoryMB * 1024 * 1024)))
        // No swap; the file is absent without swap accounting.
        await writeFile(join(dir, 'memory.swap.max'), '0').catch(() => undefined)
      }
      if (cpuHardLimit) await writeFile(join(dir, 'cpu.max'), `${cpuQuota(cpu)} ${CPU_PERIOD_US}`)
      // Docker's conversion of CPU shares (2..262144) to cgroup v2 weight (1..10000).
      const shares = Math.min(262_144, Math.max(2, Math.round(cpu)))
      await writeFile(join(dir, 'cpu.weight'), String(1 + Math.floor(((shares - 2) * 9999) / 262_142)))
      this.lastCgroupError = undefined
      return dir
    } catch (err) {
      this.lastCgroupError = `${dir}: ${(err as Error).message}`
      await rmdir(dir).catch(() => undefined)
      return undefined
    }
  }
}

/** A word for sh -c: single-quoted, with its single quotes escaped. */
function shellQuote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", "'\\''")}'`
}

/** The terminal device the first child of `pid` has as its stdin (script's command), if any. */
function terminalOfChild(pid: number): string | undefined {
  try {
    const first = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/)[0]
    if (!first) return undefined
    const target = readlinkSync(`/proc/${first}/fd/0`)
    return target.startsWith('/dev/pts/') ? target : undefined
  } catch {
    return undefined
  }
}

async function cgroupOomKilled(dir: string): Promise<boolean> {
  try {
    const events = await readFile(join(dir, 'memory.events'), 'utf8')
    const m = /^oom_kill (\d+)$/m.exec(events)
    return m !== null && Number(m[1]) > 0
  } catch {
    return false
  }
}

async function readRecordFile(path: string): Promise<HandleRecord | undefined> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch {
    return undefined
  }
  try {
    const record = JSON.parse(text) as HandleRecord
    return record.version === 1 && Number.isInteger(record.pid) ? record : undefined
  } catch {
    return undefined
  }
}

/**
 * The absolute path of `command`: a path (with a '/') relative to the alloc dir, or a
 * name looked up in PATH. DriverError when it does not exist or cannot be executed.
 */
export async function resolveCommand(command: string, cwd: string, searchPath: string | undefined): Promise<string> {
  if (!command) throw new DriverError('no command given', false)
  if (command.includes('/')) {
    const path = resolvePath(cwd, command)
    const check = await executable(path)
    if (check === 'ok') return path
    if (check === 'missing') throw new DriverError(`command "${command}" not found`, false)
    throw new DriverError(`command "${command}" is not executable`, false)
  }
  const dirs = (searchPath || DEFAULT_PATH).split(delimiter)
  let notExecutable: string | undefined
  for (const dir of dirs) {
    const path = resolvePath(cwd, dir || '.', command)
    const check = await executable(path)
    if (check === 'ok') return path
    if (check === 'not-executable') notExecutable ??= path
  }
  if (notExecutable) throw new DriverError(`command "${command}" is not executable (${notExecutable})`, false)
  throw new DriverError(`command "${command}" not found in PATH (${searchPath || DEFAULT_PATH})`, false)
}

async function executable(path: string): Promise<'ok' | 'missing' | 'not-executable'> {
  try {
    const st = await stat(path)
    if (!st.isFile()) return 'not-executable'
  } catch {
    return 'missing'
  }
  try {
    await access(path, fsConstants.X_OK)
    return 'ok'
  } catch {
    return 'not-executable'
  }
}
