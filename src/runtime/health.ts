// Health checks of a running task: http and tcp probes from the agent against
// the allocation's host port, command probes inside the task (driver exec).
// HealthTracker is the pure part (results and time in, health and events out);
// HealthMonitor runs the probes on their intervals.
import { request } from 'node:http'
import { connect } from 'node:net'
import type { AllocatedPort, CheckRestart, TaskCheck, TaskHealth } from '../structs/index.ts'
import type { ExecResult } from './driver.ts'

export interface CheckOutcome {
  ok: boolean
  /** What the probe saw: "HTTP 200", "connection refused", "exit code 1: ...". */
  message: string
}

export interface HealthEvent {
  type: 'Check passing' | 'Check failing'
  message: string
}

export interface HealthUpdate {
  health: TaskHealth
  /** Transitions only (passing ↔ failing), not every probe. */
  events: HealthEvent[]
  /** Set when check_restart calls for a restart: the reason. */
  restart?: string
}

/** A short name of a check for events: `http GET :http/health`, `tcp :db`, `command "pg_isready"`. */
export function describeCheck(check: TaskCheck): string {
  if (check.type === 'http') return `http check GET :${check.port}${check.path ?? '/'}`
  if (check.type === 'tcp') return `tcp check :${check.port}`
  return `command check ${JSON.stringify([check.command, ...(check.args ?? [])].join(' '))}`
}

interface CheckStatus {
  /** Last outcome: undefined before the first probe. */
  passing: boolean | undefined
  status: TaskHealth
  /** Consecutive failures that count (outside the start period). */
  failures: number
  /** Consecutive failures past check_restart's grace. */
  restartFailures: number
}

/**
 * Folds probe outcomes into the task's health, Docker style: a check is healthy
 * once it passes, unhealthy after `retries` consecutive failures (those within
 * `start_period` of the start do not count), and keeps its status in between.
 * The task is unhealthy if any check is, healthy if all are, else unknown.
 */
export class HealthTracker {
  readonly #checks: readonly TaskCheck[]
  readonly #restart: CheckRestart | undefined
  readonly #startedAt: number
  readonly #status: CheckStatus[]

  constructor(checks: readonly TaskCheck[], checkRestart: CheckRestart | undefined, startedAt: number) {
    this.#checks = checks
    this.#restart = checkRestart
    this.#startedAt = startedAt
    this.#status = checks.map(() => ({ passing: undefined, status: 'unknown', failures: 0, restartFailures: 0 }))
  }

  get health(): TaskHealth {
    if (this.#status.some((s) => s.status === 'unhealthy')) return 'unhealthy'
    if (this.#status.length > 0 && this.#status.every((s) => s.status === 'healthy')) return 'healthy'
    return 'unknown'
  }

  record(index: number, outcome: CheckOutcome, now: number): HealthUpdate {
    const check = this.#checks[index]
    const s = this.#status[index]
    if (!check || !s) throw new Error(`no check ${index}`)
    const events: HealthEvent[] = []
    const name = describeCheck(check)
    let restart: string | undefined
    if (outcome.ok) {
      if (s.passing !== true) events.push({ type: 'Check passing', message: `${name}: ${outcome.message}` })
      s.passing = true
      s.status = 'healthy'
      s.failures = 0
      s.restartFailures = 0
    } else {
      if (s.passing !== false) events.push({ type: 'Check failing', message: `${name}: ${outcome.message}` })
      s.passing = false
      const age = now - this.#startedAt
      if (age >= check.startPeriodMs) s.failures++
      if (s.failures >= check.retries) s.status = 'unhealthy'
      if (this.#restart && age >= this.#restart.graceMs) {
        s.restartFailures++
        if (s.restartFailures >= this.#restart.limit) {
          restart = `${name} failed ${s.restartFailures} time(s) in a row: ${outcome.message}`
          s.restartFailures = 0
        }
      }
    }
    return { health: this.health, events, ...(restart !== undefined ? { restart } : {}) }
  }
}

/** What a probe needs from the task. */
export interface ProbeTarget {
  ports: readonly AllocatedPort[]
  /** Runs a command inside the task (driver exec). */
  exec: (command: string, args: readonly string[], timeoutMs: number) => Promise<ExecResult>
}

function hostOf(ip: string): string {
  return ip.includes(':') ? `[${ip}]` : ip
}

function errorText(err: unknown): string {
  const e = err as NodeJS.ErrnoException
  if (e?.code === 'ECONNREFUSED') return 'connection refused'
  if (e?.code === 'ECONNRESET') return 'connection reset'
  return e?.code ?? (err instanceof Error ? err.message : String(err))
}

/** Runs one probe of `check`; never throws. */
export async function probe(check: TaskCheck, target: ProbeTarget): Promise<CheckOutcome> {
  try {
    if (check.type === 'command') return await probeCommand(check, target)
    const port = target.ports.find((p) => p.label === check.port)
    if (!port) return { ok: false, message: `port "${check.port}" has no allocated port` }
    if (check.type === 'tcp') return await probeTcp(port.hostIp, port.value, check.timeoutMs)
    return await probeHttp(check, port.hostIp, port.value)
  } catch (err) {
    return { ok: false, message: errorText(err) }
  }
}

function probeHttp(check: TaskCheck, host: string, port: number): Promise<CheckOutcome> {
  const path = check.path ?? '/'
  return new Promise((resolve) => {
    const req = request({ host, port, path, method: 'GET', agent: false, timeout: check.timeoutMs, headers: { 'user-agent': 'shoal-health-check' } }, (res) => {
      res.resume()
      const status = res.statusCode ?? 0
      const ok = check.expectedStatus !== undefined ? status === check.expectedStatus : status >= 200 && status < 300
      const want = check.expectedStatus !== undefined ? `, expected ${check.expectedStatus}` : ''
      resolve({ ok, message: `HTTP ${status} from GET http://${hostOf(host)}:${port}${path}${ok ? '' : want}` })
    })
    req.on('timeout', () => req.destroy(new Error(`no answer within ${check.timeoutMs} ms`)))
    req.on('error', (err) => resolve({ ok: false, message: `GET http://${hostOf(host)}:${port}${path}: ${errorText(err)}` }))
    req.end()
  })
}

function probeTcp(host: string, port: number, timeoutMs: number): Promise<CheckOutcome> {
  return new Promise((resolve) => {
    const socket = connect({ host, port })
    const timer = setTimeout(() => finish(false, `no connection within ${timeoutMs} ms`), timeoutMs)
    socket.once('connect', () => finish(true, `connected to ${hostOf(host)}:${port}`))
    socket.once('error', (err) => finish(false, `${hostOf(host)}:${port}: ${errorText(err)}`))
    function finish(ok: boolean, message: string) {
      clearTimeout(timer)
      socket.destroy()
      resolve({ ok, message })
    }
  })
}

async function probeCommand(check: TaskCheck, target: ProbeTarget): Promise<CheckOutcome> {
  const r = await target.exec(check.command ?? '', check.args ?? [], check.timeoutMs)
  if (r.timedOut) return { ok: false, message: `no exit within ${check.timeoutMs} ms` }
  const output = (r.stdout + r.stderr).trim().replace(/\s+/g, ' ').slice(0, 200)
  return { ok: r.exitCode === 0, message: `exit code ${r.exitCode}${output ? `: ${output}` : ''}` }
}

/** Runs a task's checks every interval until stopped; one probe of a check at a time. */
export class HealthMonitor {
  readonly #checks: readonly TaskCheck[]
  readonly #tracker: HealthTracker
  readonly #target: ProbeTarget
  readonly #onUpdate: (u: HealthUpdate) => void
  readonly #now: () => number
  readonly #timers = new Set<NodeJS.Timeout>()
  #stopped = false

  constructor(o: { checks: readonly TaskCheck[]; checkRestart?: CheckRestart; startedAt: number; target: ProbeTarget; onUpdate: (u: HealthUpdate) => void; now?: () => number }) {
    this.#checks = o.checks
    this.#tracker = new HealthTracker(o.checks, o.checkRestart, o.startedAt)
    this.#target = o.target
    this.#onUpdate = o.onUpdate
    this.#now = o.now ?? Date.now
  }

  start(): void {
    this.#checks.forEach((check, i) => this.#schedule(check, i))
  }

  stop(): void {
    this.#stopped = true
    for (const t of this.#timers) clearTimeout(t)
    this.#timers.clear()
  }

  #schedule(check: TaskCheck, index: number): void {
    if (this.#stopped) return
    const timer = setTimeout(() => {
      this.#timers.delete(timer)
      void probe(check, this.#target).then((outcome) => {
        if (this.#stopped) return
        this.#onUpdate(this.#tracker.record(index, outcome, this.#now()))
        this.#schedule(check, index)
      })
    }, check.intervalMs)
    this.#timers.add(timer)
  }
}
