// A 3-voter Shoal cluster of real `shoal agent` processes on loopback.
import { mkdtemp, rm } from 'node:fs/promises'
import type http from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { SHOAL, freePort } from '../../test/harness/agent.ts'
import { EventLog, FatalError, mostCommon, trackDir, untrackDir, waitFor, type Cluster, type LeaderView, type Member, type PutRequest } from './cluster.ts'
import { json, keepAliveAgent, request } from './http.ts'
import { Proc, tail } from './proc.ts'

interface MemberView { name: string; role: string }

interface ShoalMember extends Member {
  args: string[]
  proc?: Proc
}

export interface ShoalOptions {
  hosts: string[]
  /** Extra environment for the agents (e.g. NODE_OPTIONS=--cpu-prof). */
  env?: NodeJS.ProcessEnv
  /** Stop with SIGINT instead of SIGKILL (needed for --cpu-prof output). */
  graceful?: boolean
  /** More `shoal agent` flags for every member. */
  agentArgs?: string[]
}

export class ShoalCluster implements Cluster {
  readonly system = 'shoal'
  readonly members: ShoalMember[] = []
  readonly settings: Record<string, string | number | boolean>
  readonly #opts: ShoalOptions
  readonly #http: http.Agent = keepAliveAgent(8)
  #dir = ''
  #elections = 0
  readonly #events = new EventLog(/\[WARN\]|leader|raft|snapshot/)

  constructor(opts: ShoalOptions) {
    this.#opts = opts
    this.settings = {
      members: opts.hosts.length, voters: 3, hosts: opts.hosts.join(' '), raftTickMs: 50, electionTicks: '10-20 (500-1000 ms)',
      storage: 'LevelDB, every Raft save written with sync: true', snapshotThreshold: '8192 entries at least, up to 65536 while the log is smaller than the last snapshot (agent default)',
      transport: 'libp2p (TCP + noise + yamux)', note: 'agent defaults; writes through PUT /v1/var/<path>',
    }
  }

  async start(): Promise<void> {
    this.#dir = await mkdtemp(join(tmpdir(), 'shoal-bench-shoal-'))
    trackDir(this.#dir)
    const { hosts } = this.#opts
    let seed = ''
    for (const [i, host] of hosts.entries()) {
      const p2p = `${host}:${await freePort(host)}`
      if (i === 0) seed = p2p
      const name = `shoal-${i + 1}`
      const httpAddr = `${host}:${await freePort(host)}`
      const args = ['agent', '--data-dir', join(this.#dir, name), '--name', name, '--http', httpAddr, '--bind', p2p,
        ...(i === 0 ? [] : ['--join', seed]), ...(this.#opts.agentArgs ?? [])]
      this.members.push({ name, url: `http://${httpAddr}`, args })
    }
    // The first agent bootstraps the cluster; the others join through it.
    await this.#launch(this.members[0]!)
    await Promise.all(this.members.slice(1).map((m) => this.#launch(m)))
    await this.waitHealthy(60_000)
  }

  put(key: string, value: string): PutRequest {
    return { method: 'PUT', path: `/v1/var/${key}`, body: JSON.stringify({ value }) }
  }

  async waitHealthy(timeoutMs = 30_000): Promise<Member> {
    return waitFor('3 Shoal voters agreeing on a leader, writable through every member', async () => {
      let leader: string | undefined
      for (const m of this.members) {
        this.#checkAlive(m)
        const view = await json<MemberView[]>(this.#http, 'GET', `${m.url}/v1/members`)
        const roles = view.map((v) => v.role).sort().join()
        const l = view.find((v) => v.role === 'leader')?.name
        if (roles !== 'leader,voter,voter' || !l || (leader && l !== leader)) return undefined
        leader = l
      }
      for (const m of this.members) {
        const { method, path, body } = this.put(`health/${m.name}`, 'ok')
        const res = await request(this.#http, method, m.url + path, body, 2_000)
        if (res.status !== 200) return undefined
      }
      return this.members.find((m) => m.name === leader)
    }, timeoutMs)
  }

  async observe(): Promise<LeaderView> {
    const views = await Promise.all(this.members.filter((m) => m.proc?.running).map((m) =>
      json<MemberView[]>(this.#http, 'GET', `${m.url}/v1/members`, undefined, 1_000)
        .then((v) => v.find((x) => x.role === 'leader')?.name).catch(() => undefined)))
    return { leader: mostCommon(views), elections: this.#elections }
  }

  kill(member: Member): { exited: Promise<void> } {
    const m = member as ShoalMember
    return { exited: m.proc?.signal('SIGKILL') ?? Promise.resolve() }
  }

  async restart(member: Member): Promise<void> {
    await this.#launch(member as ShoalMember)
  }

  async stop(): Promise<void> {
    if (this.#opts.graceful) {
      // SIGINT lets Node write --cpu-prof profiles; SIGKILL whatever is still there after 15 s.
      const timeout = new Promise((r) => setTimeout(r, 15_000).unref())
      await Promise.race([Promise.all(this.members.map((m) => m.proc?.signal('SIGINT'))), timeout])
    }
    await Promise.all(this.members.map((m) => m.proc?.signal('SIGKILL')))
    this.#http.destroy()
    if (this.#dir) {
      await rm(this.#dir, { recursive: true, force: true, maxRetries: 5 })
      untrackDir(this.#dir)
    }
  }

  events(sinceMs: number): string[] {
    return this.#events.since(sinceMs)
  }

  async #launch(m: ShoalMember): Promise<void> {
    const proc = new Proc(m.name, SHOAL, m.args, this.#opts.env)
    proc.onLine((line) => {
      if (line.includes('became leader')) this.#elections++
      this.#events.add(m.name, line)
    })
    m.proc = proc
    await waitFor(`Shoal agent ${m.name} to answer on ${m.url}`, async () => {
      this.#checkAlive(m)
      await json(this.#http, 'GET', `${m.url}/v1/agent/self`, undefined, 1_000)
      return true
    }, 30_000).catch((err: Error) => {
      throw new Error(`${err.message}\n  ${SHOAL} ${m.args.join(' ')}\n${tail(proc)}`)
    })
  }

  #checkAlive(m: ShoalMember): void {
    if (!m.proc?.running) throw new FatalError(`Shoal agent ${m.name} exited (${m.proc?.child.exitCode ?? m.proc?.child.signalCode}):\n${m.proc ? tail(m.proc) : ''}`)
  }
}
