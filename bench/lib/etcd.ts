// A 3-member etcd cluster on loopback, driven through its v3 JSON gateway.
import { mkdtemp, rm } from 'node:fs/promises'
import type http from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort } from '../../test/harness/agent.ts'
import { EventLog, FatalError, mostCommon, trackDir, untrackDir, waitFor, type Cluster, type LeaderView, type Member, type PutRequest } from './cluster.ts'
import { json, keepAliveAgent, request } from './http.ts'
import { Proc, tail } from './proc.ts'

interface Status {
  header: { member_id: string; raft_term: string }
  leader: string
  raftTerm?: string
}

interface EtcdMember extends Member {
  args: string[]
  id?: string
  proc?: Proc
}

const b64 = (s: string) => Buffer.from(s).toString('base64')

export class EtcdCluster implements Cluster {
  readonly system = 'etcd'
  readonly members: EtcdMember[] = []
  readonly settings: Record<string, string | number | boolean>
  readonly #bin: string
  readonly #hosts: string[]
  readonly #http: http.Agent = keepAliveAgent(8)
  #dir = ''
  /** etcd runs with --log-level warn: every line is notable. */
  readonly #events = new EventLog(/\S/)

  constructor(opts: { bin: string; hosts: string[] }) {
    this.#bin = opts.bin
    this.#hosts = opts.hosts
    this.settings = {
      members: opts.hosts.length, hosts: opts.hosts.join(' '), binary: opts.bin,
      heartbeatIntervalMs: 100, electionTimeoutMs: 1000, preVote: false, snapshotCount: 100000, autoCompaction: 'off',
      note: 'etcd defaults; writes through the v3 JSON gateway (POST /v3/kv/put) on the client port',
    }
  }

  async start(): Promise<void> {
    this.#dir = await mkdtemp(join(tmpdir(), 'shoal-bench-etcd-'))
    trackDir(this.#dir)
    const ports = await Promise.all(this.#hosts.map(async (h) => ({ host: h, client: await freePort(h), peer: await freePort(h) })))
    const initial = ports.map((p, i) => `etcd-${i + 1}=http://${p.host}:${p.peer}`).join(',')
    for (const [i, p] of ports.entries()) {
      const name = `etcd-${i + 1}`
      const client = `http://${p.host}:${p.client}`
      const peer = `http://${p.host}:${p.peer}`
      this.members.push({
        name, url: client, args: [
          '--name', name, '--data-dir', join(this.#dir, name),
          '--listen-client-urls', client, '--advertise-client-urls', client,
          '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer,
          '--initial-cluster', initial, '--initial-cluster-state', 'new', '--initial-cluster-token', 'shoal-bench',
          '--logger', 'zap', '--log-outputs', 'stderr', '--log-level', 'warn',
        ],
      })
    }
    await Promise.all(this.members.map((m) => this.#launch(m)))
    await this.waitHealthy(60_000)
  }

  put(key: string, value: string): PutRequest {
    return { method: 'POST', path: '/v3/kv/put', body: JSON.stringify({ key: b64(key), value: b64(value) }) }
  }

  async waitHealthy(timeoutMs = 30_000): Promise<Member> {
    return waitFor('3 etcd members agreeing on a leader, writable through every member', async () => {
      let leader: string | undefined
      for (const m of this.members) {
        this.#checkAlive(m)
        const s = await this.#status(m, 2_000)
        if (s.leader === '0' || !s.leader || (leader && s.leader !== leader)) return undefined
        leader = s.leader
      }
      for (const m of this.members) {
        const { method, path, body } = this.put(`health/${m.name}`, 'ok')
        const res = await request(this.#http, method, m.url + path, body, 2_000)
        if (res.status !== 200) return undefined
      }
      return this.members.find((m) => m.id === leader)
    }, timeoutMs)
  }

  async observe(): Promise<LeaderView> {
    const views = await Promise.all(this.members.filter((m) => m.proc?.running).map((m) =>
      this.#status(m, 1_000).catch(() => undefined)))
    const leader = mostCommon(views.map((s) => (s && s.leader !== '0' ? this.members.find((m) => m.id === s.leader)?.name ?? s.leader : undefined)))
    const terms = views.map((s) => Number(s?.header.raft_term ?? 0))
    // Terms start at 2 after the first election of a new cluster.
    return { leader, elections: Math.max(...terms) - 1 }
  }

  kill(member: Member): { exited: Promise<void> } {
    const m = member as EtcdMember
    return { exited: m.proc?.signal('SIGKILL') ?? Promise.resolve() }
  }

  async restart(member: Member): Promise<void> {
    await this.#launch(member as EtcdMember)
  }

  async stop(): Promise<void> {
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

  async #status(m: EtcdMember, timeoutMs: number): Promise<Status> {
    const s = await json<Status>(this.#http, 'POST', `${m.url}/v3/maintenance/status`, {}, timeoutMs)
    m.id = s.header.member_id
    return s
  }

  async #launch(m: EtcdMember): Promise<void> {
    const proc = new Proc(m.name, this.#bin, m.args)
    proc.onLine((line) => this.#events.add(m.name, line))
    m.proc = proc
    await waitFor(`etcd member ${m.name} to answer on ${m.url}`, async () => {
      this.#checkAlive(m)
      await this.#status(m, 1_000)
      return true
    }, 30_000).catch((err: Error) => {
      throw new Error(`${err.message}\n  ${this.#bin} ${m.args.join(' ')}\n${tail(proc)}`)
    })
  }

  #checkAlive(m: EtcdMember): void {
    if (!m.proc?.running) throw new FatalError(`etcd member ${m.name} exited (${m.proc?.child.exitCode ?? m.proc?.child.signalCode}):\n${m.proc ? tail(m.proc) : ''}`)
  }
}
