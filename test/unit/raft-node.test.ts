// RaftNode with real LevelDB storage and real timers, over an in-process
// transport that can cut nodes off: the IO loop around the (separately
// simulated) core.
import test from 'ava'
import { cp, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { NotLeaderError, OutcomeUnknownError, RaftNode, type RaftStateMachine } from '../../src/raft/node.ts'
import { RaftStorage } from '../../src/raft/storage.ts'
import type { Message } from '../../src/raft/types.ts'

const enc = (s: string) => new TextEncoder().encode(s)
const dec = (b: Uint8Array) => new TextDecoder().decode(b)

/** A list of applied strings; snapshots carry the list. */
class ListMachine implements RaftStateMachine {
  appliedIndex = 0
  items: string[] = []
  async applyEntries(entries: { index: number; data: Uint8Array }[]) {
    return entries.map((e) => {
      this.appliedIndex = e.index
      this.items.push(dec(e.data))
      return this.items.length
    })
  }
  async snapshot() {
    return { index: this.appliedIndex, data: enc(JSON.stringify({ index: this.appliedIndex, items: this.items })) }
  }
  async restore(data: Uint8Array) {
    const s = JSON.parse(dec(data)) as { index: number; items: string[] }
    this.items = s.items
    this.appliedIndex = s.index
    return s.index
  }
}

class Net {
  nodes = new Map<string, RaftNode>()
  down = new Set<string>()
  transport(from: string) {
    return {
      send: (to: string, m: Message) => {
        if (this.down.has(from) || this.down.has(to)) return
        const target = this.nodes.get(to)
        const copy = structuredClone(m)
        if (target) setImmediate(() => target.receive(from, copy))
      },
    }
  }
}

interface Member { id: string; dir: string; node: RaftNode; sm: ListMachine; storage: RaftStorage }

async function member(net: Net, root: string, id: string, voters: string[] | undefined, extra: { snapshotEvery?: number; requestTimeoutMs?: number } = {}): Promise<Member> {
  const dir = join(root, id)
  const storage = await RaftStorage.open(dir)
  const sm = new ListMachine()
  const node = await RaftNode.open({ id, storage, stateMachine: sm, transport: net.transport(id), voters, tickMs: 10, electionTick: 10, ...extra })
  net.nodes.set(id, node)
  node.start()
  return { id, dir, node, sm, storage }
}

async function until<T>(f: () => T | undefined | false, what: string, ms = 10_000): Promise<T> {
  const end = Date.now() + ms
  while (Date.now() < end) {
    const v = f()
    if (v) return v
    await new Promise((r) => setTimeout(r, 10))
  }
  throw new Error(`timed out: ${what}`)
}

const leaderOf = (ms: Member[]) => ms.find((m) => m.node.isLeader)

/** A one-voter cluster, elected; removed after the test. */
async function soloLeader(t: { teardown: (f: () => Promise<void>) => void }, snapshotEvery: number) {
  const root = await mkdtemp(join(tmpdir(), 'shoal-raftnode-'))
  const a = await member(new Net(), root, 'a', ['a'], { snapshotEvery })
  t.teardown(async () => {
    await a.node.stop()
    await rm(root, { recursive: true, force: true })
  })
  await until(() => a.node.isLeader, 'single-voter leader')
  return { root, a }
}

test('elects, replicates, fails over, and recovers every acknowledged write after a full restart', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'shoal-raftnode-'))
  const net = new Net()
  const ids = ['a', 'b', 'c']
  let ms = await Promise.all(ids.map((id) => member(net, root, id, ids)))
  t.teardown(async () => {
    for (const m of ms) await m.node.stop()
    await rm(root, { recursive: true, force: true })
  })
  const l1 = await until(() => leaderOf(ms), 'first leader')
  const acked: string[] = []
  for (let i = 0; i < 20; i++) {
    const r = await l1.node.propose(enc(`w${i}`))
    t.true(r.index > 0)
    acked.push(`w${i}`)
  }
  const follower = ms.find((m) => m !== l1)!
  const err = await t.throwsAsync(follower.node.propose(enc('nope')), { instanceOf: NotLeaderError })
  t.is(err.leader, l1.id)
  t.is(await l1.node.readBarrier() >= 20, true)

  // Cut the leader off: the others elect a new one and keep accepting writes.
  net.down.add(l1.id)
  const l2 = await until(() => ms.find((m) => m !== l1 && m.node.isLeader), 'new leader')
  for (let i = 20; i < 30; i++) {
    await l2.node.propose(enc(`w${i}`))
    acked.push(`w${i}`)
  }
  await until(() => !l1.node.isLeader, 'old leader steps down (CheckQuorum)')
  await t.throwsAsync(l1.node.readBarrier(), { instanceOf: NotLeaderError }, 'a deposed leader serves no linearizable read')
  net.down.clear()
  await until(() => ms.every((m) => m.sm.items.length === 30), 'old leader catches up')

  // Full restart from LevelDB: state machines rebuilt from the log.
  for (const m of ms) {
    await m.node.stop()
    await m.storage.close()
  }
  net.nodes.clear()
  ms = await Promise.all(ids.map((id) => member(net, root, id, ids)))
  await until(() => ms.every((m) => m.sm.items.length === 30), 'replay after restart')
  for (const m of ms) t.deepEqual(m.sm.items, acked)
  const l3 = await until(() => leaderOf(ms), 'leader after restart')
  await l3.node.propose(enc('after'))
  await until(() => ms.every((m) => m.sm.items.at(-1) === 'after'), 'write after restart')
})

test('open() rebuilds an empty state machine from the snapshot and the committed log, before start; an idle commit index reaches the disk within a second', async (t) => {
  const { root, a } = await soloLeader(t, 10)
  const written: string[] = []
  for (let i = 0; i < 25; i++) {
    await a.node.propose(enc(`v${i}`))
    written.push(`v${i}`)
  }
  t.true(a.node.core.firstIndex > 10, 'a snapshot compacted the log')
  // The last commit index changed on its own (no batch after it): written after
  // it waited a second. Then a kill -9: a copy of the files of the running node.
  await new Promise((r) => setTimeout(r, 1_300))
  await cp(a.dir, join(root, 'crashed'), { recursive: true })
  const storage = await RaftStorage.open(join(root, 'crashed'))
  t.teardown(() => storage.close())
  const sm = new ListMachine()
  const restored: number[] = []
  const restore = sm.restore.bind(sm)
  sm.restore = async (data) => {
    const i = await restore(data)
    restored.push(i)
    return i
  }
  const node = await RaftNode.open({ id: 'a', storage, stateMachine: sm, transport: { send: () => undefined }, tickMs: 10, electionTick: 10 })
  t.is(restored.length, 1, 'started from the snapshot')
  t.deepEqual(sm.items, written, 'then replayed the log, all before open() returned')
  t.is(node.appliedIndex, a.node.appliedIndex)
})

test('a new learner catches up from a snapshot, then follows the log', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'shoal-raftnode-'))
  const net = new Net()
  const ms: Member[] = [await member(net, root, 'a', ['a'], { snapshotEvery: 25 })]
  t.teardown(async () => {
    for (const m of ms) await m.node.stop()
    await rm(root, { recursive: true, force: true })
  })
  const leader = await until(() => leaderOf(ms), 'single-voter leader')
  for (let i = 0; i < 60; i++) await leader.node.propose(enc(`v${i}`))
  t.true(leader.node.core.firstIndex > 25, 'log was compacted after a snapshot')
  const learner = await member(net, root, 'b', undefined)
  ms.push(learner)
  await leader.node.changeMembership({ type: 'addLearner', nodeId: 'b' })
  await until(() => learner.sm.items.length === 60, 'learner restored from snapshot and caught up')
  await leader.node.propose(enc('tail'))
  await until(() => learner.sm.items.at(-1) === 'tail', 'learner follows new entries')
  t.deepEqual(learner.sm.items, leader.sm.items)
  await leader.node.changeMembership({ type: 'promote', nodeId: 'b' })
  t.deepEqual(leader.node.status().conf.voters.sort(), ['a', 'b'])
})

test('a snapshot waits until the log since the last one is as large as it, or 8 × snapshotEvery entries', async (t) => {
  const { a } = await soloLeader(t, 10)
  const big = 'x'.repeat(1000)
  const write = async (n: number, value: string) => {
    for (let i = 0; i < n; i++) await a.node.propose(enc(value))
  }
  const snapshotAt = () => a.node.core.firstIndex - 1
  await write(10, big)
  await until(() => snapshotAt() >= 10, 'first snapshot after 10 entries (nothing to compare with yet)')
  const s1 = snapshotAt()
  await write(30, 'small')
  t.is(snapshotAt(), s1, '150 logged bytes against a 10 kB snapshot: no new one yet')
  await write(50, 'small')
  const s2 = await until(() => snapshotAt() >= s1 + 80 && snapshotAt(), 'a snapshot once 8 × 10 entries were applied')
  await write(12, big)
  const s3 = await until(() => snapshotAt() > s2 && snapshotAt(), 'a snapshot once the log outweighs the last one')
  t.true(s3 - s2 < 20, `${s3 - s2} entries after the last snapshot`)
})

test('junk from peers is dropped and counted; the node keeps serving', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'shoal-raftnode-'))
  const net = new Net()
  const warnings: string[] = []
  const storage = await RaftStorage.open(join(root, 'a'))
  const sm = new ListMachine()
  const node = await RaftNode.open({
    id: 'a', storage, stateMachine: sm, transport: net.transport('a'), voters: ['a'], tickMs: 10,
    log: { info: () => undefined, warn: (m) => warnings.push(m) },
  })
  net.nodes.set('a', node)
  node.start()
  t.teardown(async () => {
    await node.stop()
    await rm(root, { recursive: true, force: true })
  })
  await until(() => node.isLeader, 'leader')
  const junk: unknown[] = [
    null, 42, 'text', { from: 'b' }, { from: 'b', type: 'bogus', to: 'a', term: 1 },
    { from: 'b', type: 'appendEntries', to: 'a', term: 2 ** 60, prevLogIndex: 0, prevLogTerm: 0, entries: [], commit: 0 },
    { from: 'b', type: 'appendEntries', to: 'a', term: 1, prevLogIndex: 'x', prevLogTerm: 0, entries: [{}], commit: 0 },
  ]
  for (const m of junk) node.receive('b', m)
  node.receive('b', { from: 'c', type: 'heartbeat', to: 'a', term: 9, commit: 0, context: 0 })
  t.is(node.drops.malformed, 4, JSON.stringify(node.drops))
  t.is(node.drops.spoofed, 4, 'null, 42, text and the message claiming to be from c')
  t.true(node.isLeader, 'a far-future term did not depose the leader')
  t.regex(warnings.join('\n'), /dropped a (malformed|spoofed) message/)
  const r = await node.propose(enc('still works'))
  t.true(r.index > 0)
})

test('a proposal that cannot commit in time is answered "outcome unknown" at its deadline; later ones still commit', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'shoal-raftnode-'))
  t.teardown(() => rm(root, { recursive: true, force: true }))
  const net = new Net()
  const ids = ['a', 'b', 'c']
  const ms = await Promise.all(ids.map((id) => member(net, root, id, ids, { requestTimeoutMs: 40 })))
  const leader = await until(() => leaderOf(ms), 'a leader')
  await leader.node.propose(enc('first'))
  for (const m of ms) if (m !== leader) net.down.add(m.id)
  const started = Date.now()
  const err = await t.throwsAsync(leader.node.propose(enc('cut off')))
  t.true(err instanceof OutcomeUnknownError, String(err))
  t.regex(err!.message, /timed out/)
  t.true(Date.now() - started < 1_000, 'answered within its deadline (plus a tick), not left hanging')
  net.down.clear()
  const next = await until(() => leaderOf(ms), 'a leader again')
  const r = await next.node.propose(enc('after'))
  t.true(r.index > 0)
  await Promise.all(ms.map((m) => m.node.stop().then(() => m.storage.close())))
})
