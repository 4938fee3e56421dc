// The cluster under test: five real `shoal agent` processes, each on its own
// loopback address (so iptables rules by address partition them for real),
// with data dirs and logs kept in the run's results folder for post-mortem.
//
// Unlike test/harness's AgentProcess.start, a restart here does not wait for the
// agent to be ready: a node restarted inside a partition may take a long time to
// rejoin, and the nemesis must not block (or lose the process) meanwhile.
import { spawn, type ChildProcess } from 'node:child_process'
import { createWriteStream, type WriteStream } from 'node:fs'
import { mkdir, readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { eventually, freePort, ROOT, SHOAL } from '../harness/agent.ts'
import { Partitions } from '../harness/net.ts'

export const DEFAULT_HOSTS = ['127.0.0.121', '127.0.0.122', '127.0.0.123', '127.0.0.124', '127.0.0.125']

export interface AgentSpec {
  name: string
  host: string
  bind: string
  httpPort: number
  dataDir: string
  join: string[]
}

export interface SelfView {
  name: string
  stateIndex: number
  raft: { role: string; term: number; leader: string | null; commit: number; applied: number; voters: string[]; learners: string[] }
}

export interface MemberView { name: string; status: string; role: string }

export interface AgentExit { agent: string; wall: string; incarnation: number; code: number | null; signal: string | null; lastLine: string }

export class Agent {
  readonly spec: AgentSpec
  readonly address: string
  proc: ChildProcess | null = null
  paused = false
  incarnation = 0
  /** Called when the process exits without kill() having been asked to end it. */
  onUnexpectedExit: ((exit: AgentExit) => void) | undefined
  readonly #log: WriteStream
  #expectExit = false
  #tail = ''

  constructor(spec: AgentSpec, logFile: string) {
    this.spec = spec
    this.address = `http://127.0.0.1:${spec.httpPort}`
    this.#log = createWriteStream(logFile, { flags: 'a' })
  }

  get name(): string {
    return this.spec.name
  }

  get alive(): boolean {
    return this.proc !== null && this.proc.exitCode === null && this.proc.signalCode === null
  }

  /** Starts the process (no waiting); its output goes to the agent's log file. */
  spawn(): void {
    if (this.alive) throw new Error(`${this.name} is already running`)
    const s = this.spec
    const args = ['agent', '--data-dir', s.dataDir, '--name', s.name, '--http', `127.0.0.1:${s.httpPort}`, '--bind', s.bind, ...s.join.flatMap((j) => ['--join', j])]
    this.incarnation++
    this.#log.write(`${new Date().toISOString()} [JEPSEN] ---- start #${this.incarnation}: shoal ${args.join(' ')}\n`)
    const proc = spawn(SHOAL, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
    proc.stdout.pipe(this.#log, { end: false })
    proc.stderr.pipe(this.#log, { end: false })
    this.#tail = ''
    const keep = (d: Buffer) => (this.#tail = (this.#tail + d.toString()).slice(-2000))
    proc.stdout.on('data', keep)
    proc.stderr.on('data', keep)
    const incarnation = this.incarnation
    this.#expectExit = false
    proc.on('exit', (code, signal) => {
      this.#log.write(`${new Date().toISOString()} [JEPSEN] ---- exit #${incarnation}: ${signal ?? code}\n`)
      if (this.#expectExit || proc !== this.proc) return
      const lastLine = this.#tail.split('\n').map((l) => l.trim()).filter(Boolean).pop() ?? ''
      this.onUnexpectedExit?.({ agent: this.name, wall: new Date().toISOString(), incarnation, code, signal, lastLine })
    })
    this.proc = proc
    this.paused = false
  }

  note(line: string): void {
    this.#log.write(`${new Date().toISOString()} [JEPSEN] ${line}\n`)
  }

  /** kill -9 (or another signal) and wait for the process to be gone. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const p = this.proc
    if (!p || !this.alive) return
    this.#expectExit = true
    const gone = new Promise((r) => p.once('exit', r))
    if (this.paused && signal !== 'SIGKILL') p.kill('SIGCONT')
    p.kill(signal)
    await gone
    this.paused = false
  }

  pause(): void {
    if (!this.alive || this.paused) return
    this.proc!.kill('SIGSTOP')
    this.paused = true
  }

  resume(): void {
    if (!this.alive || !this.paused) return
    this.proc!.kill('SIGCONT')
    this.paused = false
  }

  async get<T>(path: string, timeoutMs = 3_000): Promise<T> {
    const res = await fetch(this.address + path, { signal: AbortSignal.timeout(timeoutMs) })
    if (!res.ok) throw new Error(`${this.name} GET ${path}: ${res.status} ${await res.text()}`)
    return (await res.json()) as T
  }

  closeLog(): Promise<void> {
    return new Promise((r) => this.#log.end(r))
  }
}

export class Cluster {
  readonly agents: Agent[]
  readonly net = new Partitions()
  readonly dir: string
  /** Agents that exited without the nemesis killing them (each restarted by the supervisor). */
  readonly exits: AgentExit[] = []
  #stopping = false

  private constructor(dir: string, agents: Agent[]) {
    this.dir = dir
    this.agents = agents
    // A supervisor like systemd's Restart=always, RestartSec=2: an agent that exits on
    // its own is a finding (recorded), and is started again so the run goes on.
    for (const a of agents) {
      a.onUnexpectedExit = (exit) => {
        if (this.#stopping) return
        this.exits.push(exit)
        a.note(`supervisor: ${a.name} exited on its own (${exit.signal ?? `code ${exit.code}`}: ${exit.lastLine}); restarting in 2 s`)
        setTimeout(() => {
          if (!this.#stopping && !a.alive) a.spawn()
        }, 2_000)
      }
    }
  }

  /** Starts `hosts.length` agents (the first bootstraps, the others join it) and waits for a healthy cluster. */
  static async start(dir: string, opts: { hosts?: string[]; log?: (line: string) => void; timeoutMs?: number } = {}): Promise<Cluster> {
    const hosts = opts.hosts ?? DEFAULT_HOSTS
    await mkdir(join(dir, 'logs'), { recursive: true })
    await mkdir(join(dir, 'data'), { recursive: true })
    const binds = await Promise.all(hosts.map(async (h) => `${h}:${await freePort(h)}`))
    const agents: Agent[] = []
    for (const [i, host] of hosts.entries()) {
      const name = `n${i + 1}`
      const spec: AgentSpec = { name, host, bind: binds[i]!, httpPort: await freePort(), dataDir: join(dir, 'data', name), join: i === 0 ? [] : [binds[0]!] }
      agents.push(new Agent(spec, join(dir, 'logs', `${name}.log`)))
    }
    const cluster = new Cluster(dir, agents)
    try {
      agents[0]!.spawn()
      await eventually(async () => (await agents[0]!.get<SelfView>('/v1/agent/self')).raft.role === 'leader', { what: 'the first agent leading', timeoutMs: 30_000 })
      for (const a of agents.slice(1)) a.spawn()
      await cluster.waitHealthy(opts.timeoutMs ?? 90_000)
    } catch (err) {
      await cluster.stop()
      throw err
    }
    opts.log?.(`cluster up: ${agents.map((a) => `${a.name}=${a.spec.bind} http ${a.spec.httpPort}`).join(', ')}`)
    return cluster
  }

  byName(name: string): Agent {
    const a = this.agents.find((x) => x.name === name)
    if (!a) throw new Error(`no agent ${name}`)
    return a
  }

  /** The agent that believes itself leader with the highest term, if any answers. */
  async leader(): Promise<Agent | undefined> {
    const views = await Promise.all(this.agents.map(async (a) => {
      if (!a.alive || a.paused) return undefined
      const self = await a.get<SelfView>('/v1/agent/self', 1_500).catch(() => undefined)
      return self && self.raft.role === 'leader' ? { a, term: self.raft.term } : undefined
    }))
    return views.filter((v) => v !== undefined).sort((x, y) => y.term - x.term)[0]?.a
  }

  /** Heals every partition, resumes paused agents and restarts dead ones. */
  async healAll(): Promise<string[]> {
    const done: string[] = []
    this.net.heal()
    for (const a of this.agents) {
      if (a.paused) {
        a.resume()
        done.push(`resume ${a.name}`)
      }
      if (!a.alive) {
        a.spawn()
        done.push(`restart ${a.name}`)
      }
    }
    return done
  }

  /**
   * Every agent answers, all see the same leader, 5 alive members with a full
   * voter set, every node ready, and every FSM at the same index.
   */
  async waitHealthy(timeoutMs: number): Promise<SelfView[]> {
    return eventually(async () => {
      const selves = await Promise.all(this.agents.map((a) => a.get<SelfView>('/v1/agent/self')))
      const leaders = new Set(selves.map((s) => s.raft.leader))
      if (leaders.size !== 1 || [...leaders][0] === null) return false
      const members = await this.agents[0]!.get<MemberView[]>('/v1/members')
      if (members.length !== this.agents.length || members.some((m) => m.status !== 'alive')) return false
      if (members.filter((m) => m.role === 'leader' || m.role === 'voter').length < Math.min(3, this.agents.length)) return false
      const nodes = await this.agents[0]!.get<{ name: string; status: string }[]>('/v1/nodes')
      if (nodes.filter((n) => n.status === 'ready').length !== this.agents.length) return false
      const again = await Promise.all(this.agents.map((a) => a.get<SelfView>('/v1/agent/self')))
      return new Set(again.map((s) => s.stateIndex)).size === 1 && again
    }, { what: 'a healthy cluster (one leader, all members alive, all nodes ready, every FSM at the same index)', timeoutMs, intervalMs: 500 })
  }

  /** Stops everything this cluster started: partitions, agents, then any task process the agents left behind. */
  async stop(): Promise<void> {
    this.#stopping = true
    this.net.heal()
    for (const a of this.agents) a.resume()
    await Promise.all(this.agents.map((a) => a.kill('SIGKILL')))
    await killLeftoverTasks(this.agents.map((a) => a.spec.dataDir))
    await Promise.all(this.agents.map((a) => a.closeLog()))
  }
}

// ---- exec tasks as real processes ------------------------------------------------

export interface TaskProcess { agent: string; allocId: string; jobId: string; pid: number }

/** State and start time (fields 3 and 22) of /proc/<pid>/stat; the comm field may hold ") ". */
function procStat(stat: string): { state: string; startTime: string } {
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return { state: rest[0] ?? '', startTime: rest[19] ?? '' }
}

/**
 * The exec driver's live task processes, from the handle files under each agent's
 * data dir (`exec/<alloc>+<task>.json`: pid and /proc start time, guarding against pid reuse).
 */
export async function liveTasks(dataDirs: readonly string[]): Promise<TaskProcess[]> {
  const out: TaskProcess[] = []
  for (const dir of dataDirs) {
    const stateDir = join(dir, 'exec')
    const files = await readdir(stateDir).catch(() => [] as string[])
    for (const f of files.filter((x) => x.endsWith('.json'))) {
      try {
        const rec = JSON.parse(await readFile(join(stateDir, f), 'utf8')) as { pid: number; startTime: string; allocId: string; jobId: string }
        const stat = await readFile(`/proc/${rec.pid}/stat`, 'utf8').catch(() => '')
        const st = procStat(stat)
        if (!stat || st.startTime !== rec.startTime || st.state === 'Z') continue
        out.push({ agent: dir.split('/').pop()!, allocId: rec.allocId, jobId: rec.jobId, pid: rec.pid })
      } catch {
        // a handle file being rewritten: skip
      }
    }
  }
  return out
}

/** SIGKILLs the process groups of task processes the agents started and left running. */
export async function killLeftoverTasks(dataDirs: readonly string[]): Promise<number> {
  const tasks = await liveTasks(dataDirs)
  for (const t of tasks) {
    try {
      process.kill(-t.pid, 'SIGKILL')
    } catch {
      try {
        process.kill(t.pid, 'SIGKILL')
      } catch {
        // already gone
      }
    }
  }
  return tasks.length
}
