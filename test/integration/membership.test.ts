// SWIM membership on real sockets: five separate processes (test/fixtures/swim-node.ts)
// on 127.0.0.81..85, then kill -9, SIGSTOP/SIGCONT, SIGTERM (graceful leave) and a
// restart. Detection times are logged; the asserted bounds are generous so that a
// loaded CI machine cannot flake them (the targets are ~2 s and ~3 s).
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import test, { type ExecutionContext } from 'ava'
import { generateClusterKey } from '../../src/gossip/cluster-key.ts'
import { createHost } from '../../src/gossip/host.ts'
import { Membership, SWIM_PROTOCOL, type MemberEvent } from '../../src/gossip/membership.ts'
import { RAFT_PROTOCOL, RaftTransport } from '../../src/raft/transport.ts'
import type { MemberStatus } from '../../src/gossip/swim.ts'

const FIXTURE = join(import.meta.dirname, '..', 'fixtures', 'swim-node.ts')

interface MemberEventLine {
  type: 'event'
  id: string
  status: MemberStatus
  incarnation: number
  previous: MemberStatus | null
  at: number
}

type Line = { type: string } & Record<string, unknown>

class NodeProc {
  readonly name: string
  readonly ip: string
  readonly dataDir: string
  readonly proc: ChildProcess
  readonly lines: Line[] = []
  readonly stderr: string[] = []
  id = ''
  addrs: string[] = []
  incarnation = 0
  exit: Promise<number | null>
  readonly #waiters = new Set<() => void>()

  constructor(name: string, ip: string, dataDir: string, keyFile: string) {
    this.name = name
    this.ip = ip
    this.dataDir = dataDir
    this.proc = spawn(process.execPath, [FIXTURE, '--listen', ip, '--data-dir', dataDir, '--cluster-key-file', keyFile], {
      stdio: ['pipe', 'pipe', 'pipe'],
    })
    createInterface({ input: this.proc.stdout as NodeJS.ReadableStream }).on('line', (l) => {
      try {
        this.lines.push(JSON.parse(l) as Line)
      } catch {
        this.stderr.push(`(stdout) ${l}`)
      }
      for (const w of this.#waiters) w()
    })
    createInterface({ input: this.proc.stderr as NodeJS.ReadableStream }).on('line', (l) => this.stderr.push(l))
    this.exit = new Promise((resolve) => this.proc.on('exit', (code) => {
      resolve(code)
      for (const w of this.#waiters) w()
    }))
  }

  events(): MemberEventLine[] {
    return this.lines.filter((l): l is MemberEventLine & Line => l.type === 'event') as MemberEventLine[]
  }

  /** The first event about `id` matching `pred`, waiting up to `timeoutMs`. */
  async waitEvent(pred: (e: MemberEventLine) => boolean, timeoutMs: number, what: string): Promise<MemberEventLine> {
    const line = await this.waitLine((l) => l.type === 'event' && pred(l as unknown as MemberEventLine), timeoutMs, what)
    return line as unknown as MemberEventLine
  }

  waitLine(pred: (l: Line) => boolean, timeoutMs: number, what: string): Promise<Line> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        const hit = this.lines.find(pred)
        if (hit === undefined) return false
        cleanup()
        resolve(hit)
        return true
      }
      const timer = setTimeout(() => {
        cleanup()
        reject(new Error(`${this.name}: timed out after ${timeoutMs} ms waiting for ${what}\nstderr:\n${this.stderr.slice(-20).join('\n')}`))
      }, timeoutMs)
      const cleanup = (): void => {
        clearTimeout(timer)
        this.#waiters.delete(waiter)
      }
      const waiter = (): void => {
        check()
      }
      this.#waiters.add(waiter)
      check()
    })
  }

  /** Poll the member list until `pred` holds. */
  async waitMembers(pred: (members: Array<{ id: string; status: MemberStatus; incarnation: number }>) => boolean, timeoutMs: number, what: string): Promise<void> {
    const seen = this.lines.length
    const poll = setInterval(() => this.command({ cmd: 'members' }), 100)
    try {
      await this.waitLine((l) => l.type === 'members' && this.lines.indexOf(l) >= seen && pred(l.members as never), timeoutMs, what)
    } finally {
      clearInterval(poll)
    }
  }

  command(cmd: object): void {
    this.proc.stdin?.write(`${JSON.stringify(cmd)}\n`)
  }

  async ready(): Promise<void> {
    const r = await this.waitLine((l) => l.type === 'ready', 30_000, 'ready')
    this.id = r.id as string
    this.addrs = r.addrs as string[]
    this.incarnation = r.incarnation as number
  }
}

async function tempDir(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-swim-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

function stats(ms: number[]): string {
  const s = [...ms].sort((a, b) => a - b)
  return `min ${s[0]} / median ${s[Math.floor((s.length - 1) / 2)]} / max ${s[s.length - 1]} ms`
}

test('five processes: kill -9, SIGSTOP/SIGCONT, SIGTERM and restart are detected', async (t) => {
  t.timeout(120_000)
  const dir = await tempDir(t)
  const keyFile = join(dir, 'cluster.key')
  await writeFile(keyFile, generateClusterKey())
  const nodes: NodeProc[] = []
  t.teardown(() => {
    for (const n of nodes) if (n.proc.exitCode === null && n.proc.signalCode === null) n.proc.kill('SIGKILL')
  })
  const spawnNode = (i: number): NodeProc => {
    const n = new NodeProc(`n${i}`, `127.0.0.${81 + i}`, join(dir, `n${i}`), keyFile)
    nodes.push(n)
    return n
  }
  const [n0, n1, n2, n3, n4] = [0, 1, 2, 3, 4].map(spawnNode) as [NodeProc, NodeProc, NodeProc, NodeProc, NodeProc]
  const all = [n0, n1, n2, n3, n4]
  await Promise.all(all.map((n) => n.ready()))

  // join through one seed: the others are learned by push-pull sync and gossip
  const t0 = Date.now()
  for (const n of [n1, n2, n3, n4]) n.command({ cmd: 'join', peers: [{ id: n0.id, addrs: n0.addrs }] })
  // (incarnation 0 is the placeholder for a member added but not heard from yet)
  await Promise.all(all.map((n) => n.waitMembers(
    (ms) => ms.length === 5 && ms.every((m) => m.status === 'alive' && m.incarnation > 0), 15_000, 'all five alive')))
  t.log(`5 processes know each other ${Date.now() - t0} ms after joining through one seed`)
  await new Promise((resolve) => setTimeout(resolve, 1_500))

  // kill -9: the sockets close, survivors probe at once
  const killedAt = Date.now()
  n4.proc.kill('SIGKILL')
  const killTimes = await Promise.all([n0, n1, n2, n3].map(async (n) => {
    const e = await n.waitEvent((e) => e.id === n4.id && e.status === 'dead', 20_000, 'n4 dead after kill -9')
    return e.at - killedAt
  }))
  t.log(`kill -9: each survivor marked it dead after ${killTimes.join(', ')} ms (${stats(killTimes)})`)
  for (const ms of killTimes) t.true(ms <= 6_000, `kill -9 detected after ${ms} ms`)

  // SIGSTOP: the sockets stay open, only probing can tell
  await new Promise((resolve) => setTimeout(resolve, 500))
  const stoppedAt = Date.now()
  n3.proc.kill('SIGSTOP')
  const stopTimes = await Promise.all([n0, n1, n2].map(async (n) => {
    const e = await n.waitEvent((e) => e.id === n3.id && e.status === 'dead' && e.at >= stoppedAt, 20_000, 'n3 dead after SIGSTOP')
    return e.at - stoppedAt
  }))
  t.log(`SIGSTOP: each survivor marked it dead after ${stopTimes.join(', ')} ms (${stats(stopTimes)})`)
  for (const ms of stopTimes) t.true(ms <= 8_000, `SIGSTOP detected after ${ms} ms`)
  const deadInc = Math.max(...[n0, n1, n2].flatMap((n) => n.events().filter((e) => e.id === n3.id && e.status === 'dead').map((e) => e.incarnation)))

  // SIGCONT: it hears that it is dead, refutes with a higher incarnation
  const contAt = Date.now()
  n3.proc.kill('SIGCONT')
  const backTimes = await Promise.all([n0, n1, n2].map(async (n) => {
    const e = await n.waitEvent((e) => e.id === n3.id && e.status === 'alive' && e.at >= contAt, 15_000, 'n3 alive after SIGCONT')
    t.true(e.incarnation > deadInc, `${n.name} sees n3 back at incarnation ${e.incarnation} > ${deadInc}`)
    return e.at - contAt
  }))
  t.log(`SIGCONT: alive again (higher incarnation) after ${backTimes.join(', ')} ms`)

  // SIGTERM: graceful leave
  await new Promise((resolve) => setTimeout(resolve, 500))
  const termAt = Date.now()
  n2.proc.kill('SIGTERM')
  const leaveTimes = await Promise.all([n0, n1, n3].map(async (n) => {
    const e = await n.waitEvent((e) => e.id === n2.id && e.status === 'left', 10_000, 'n2 left after SIGTERM')
    return e.at - termAt
  }))
  t.log(`SIGTERM: each member saw it leave after ${leaveTimes.join(', ')} ms (${stats(leaveTimes)})`)
  for (const ms of leaveTimes) t.true(ms <= 3_000, `leave seen after ${ms} ms`)
  t.is(await n2.exit, 0)
  const left = n2.lines.find((l) => l.type === 'left')
  t.log(`leaver: ${JSON.stringify(left)}`)
  t.true((left?.acked as number) >= 1, 'the leaver got acks for its `left`')

  // restart the killed node (same identity, new port): back with a higher incarnation
  const n4b = new NodeProc('n4b', n4.ip, n4.dataDir, keyFile)
  nodes.push(n4b)
  await n4b.ready()
  t.is(n4b.id, n4.id)
  const restartAt = Date.now()
  n4b.command({ cmd: 'join', peers: [{ id: n1.id, addrs: n1.addrs }] })
  const rejoinTimes = await Promise.all([n0, n1, n3].map(async (n) => {
    const e = await n.waitEvent((e) => e.id === n4.id && e.status === 'alive' && e.at >= restartAt, 15_000, 'n4 alive after restart')
    t.true(e.incarnation > n4.incarnation)
    return e.at - restartAt
  }))
  t.log(`restart: the old node id is alive again after ${rejoinTimes.join(', ')} ms`)

  // nobody else was ever declared dead or left
  const culprits = new Set([n2.id, n3.id, n4.id])
  const wrong = [n0, n1, n3].flatMap((n) => n.events()
    .filter((e) => (e.status === 'dead' || e.status === 'left') && !culprits.has(e.id))
    .map((e) => `${n.name}: ${e.id} ${e.status}`))
  t.deepEqual(wrong, [])
  const n2Dead = [n0, n1, n3].flatMap((n) => n.events().filter((e) => e.id === n2.id && e.status === 'dead'))
  t.deepEqual(n2Dead, [], 'the node that left was never declared dead')
  for (const n of [n0, n1, n3]) {
    const suspicions = n.events().filter((e) => e.status === 'suspect' && !culprits.has(e.id)).length
    if (suspicions > 0) t.log(`${n.name}: ${suspicions} transient suspicion(s) of live nodes`)
  }
})

test('in one process: its own protocol next to Raft, members() with lastSeen, leave, removePeer', async (t) => {
  const dir = await tempDir(t)
  const clusterKey = generateClusterKey()
  const hosts = await Promise.all([86, 87, 88].map((i) =>
    createHost({ dataDir: join(dir, `h${i}`), listenHost: `127.0.0.${i}`, listenPort: 0, clusterKey })))
  const ms = await Promise.all(hosts.map((h) => Membership.create(h, { logger: { info: () => {}, warn: (m) => t.log(m) } })))
  t.teardown(async () => {
    await Promise.all(ms.map((m) => m.stop()))
    await Promise.all(hosts.map((h) => h.stop()))
  })
  const [a, b, c] = ms as [Membership, Membership, Membership]
  const events: MemberEvent[] = []
  a.on('member', (e) => events.push(e))
  for (const m of ms) m.start()
  // a Raft transport on the same hosts keeps its own protocol
  const raftA = await RaftTransport.create(a.host)
  const raftB = await RaftTransport.create(b.host)
  t.teardown(async () => {
    await raftA.close()
    await raftB.close()
  })
  const raftInbox: unknown[] = []
  raftB.onMessage((_from, msg) => raftInbox.push(msg))

  b.addPeer(a.id, a.host.multiaddrs())
  c.addPeer(b.id, b.host.multiaddrs())
  const everyoneAlive = (): boolean => ms.every((m) => {
    const list = m.members()
    return list.length === 3 && list.every((x) => x.status === 'alive' && x.incarnation > 0)
  })
  await until(everyoneAlive, 10_000, 'all three alive everywhere')
  raftA.setPeerAddresses(b.id, b.host.multiaddrs())
  raftA.send(b.id, { type: 'hello' })
  await until(() => raftInbox.length === 1, 5_000, 'raft message')
  t.deepEqual(raftInbox, [{ type: 'hello' }])
  // let a few probe periods pass so that every pair has talked
  await new Promise((resolve) => setTimeout(resolve, 1_500))

  const protocols = new Set(a.host.libp2p.getConnections().flatMap((conn) => conn.streams.map((s) => s.protocol)))
  t.true(protocols.has(SWIM_PROTOCOL), [...protocols].join(', '))
  t.true(protocols.has(RAFT_PROTOCOL))
  const list = a.members()
  t.is(list[0]?.id, a.id)
  t.true(list[0]?.local)
  const now = Date.now()
  for (const m of list) {
    t.is(m.status, 'alive')
    t.true(m.lastSeen !== null && now - m.lastSeen < 5_000, `${m.id} last seen ${m.lastSeen === null ? 'never' : now - m.lastSeen} ms ago`)
    t.true((m.addrs ?? []).length > 0)
  }
  t.is(list.find((m) => m.id === b.id)?.incarnation, b.incarnation)
  t.deepEqual(events.filter((e) => e.status !== 'alive'), [])
  t.is(a.stats().malformed, 0)

  // graceful leave: acknowledged by both others, seen at once
  const leftAt = Date.now()
  const r = await c.leave(1_000)
  t.deepEqual(r, { sent: 2, acked: 2 })
  await until(() => a.members().find((m) => m.id === c.id)?.status === 'left', 2_000, 'c left')
  t.true(Date.now() - leftAt < 1_000)
  await c.stop()
  const leftEvent = events.find((e) => e.id === c.id && e.status === 'left')
  t.is(leftEvent?.incarnation, c.incarnation)
  t.is(leftEvent?.previous, 'alive')

  a.removePeer(c.id)
  t.deepEqual(a.members().map((m) => m.id).sort(), [a.id, b.id].sort())
  await new Promise((resolve) => setTimeout(resolve, 500))
  t.deepEqual(events.filter((e) => e.status === 'dead' || e.status === 'suspect'), [])
})

async function until(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}
