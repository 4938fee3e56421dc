// The Raft transport over real libp2p hosts on loopback.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { lpStream } from '@libp2p/utils'
import test, { type ExecutionContext } from 'ava'
import { encode } from '../../src/fsm/codec.ts'
import { generateClusterKey } from '../../src/gossip/cluster-key.ts'
import { createHost, type ShoalHost } from '../../src/gossip/host.ts'
import { loadOrCreateIdentity } from '../../src/gossip/identity.ts'
import { RAFT_PROTOCOL, RaftTransport, type RaftTransportOptions, type TransportLogger } from '../../src/raft/transport.ts'

const clusterKey = generateClusterKey()

interface Node {
  host: ShoalHost
  transport: RaftTransport
  dataDir: string
  inbox: Array<{ from: string; message: Record<string, unknown> }>
  logs: string[]
}

async function tempDir(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-raft-transport-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

function collectingLogger(logs: string[]): TransportLogger {
  return { info: (m) => logs.push(`INFO ${m}`), warn: (m) => logs.push(`WARN ${m}`) }
}

async function node(
  t: ExecutionContext,
  listenHost: string,
  opts: { dataDir?: string; listenPort?: number; transport?: RaftTransportOptions } = {},
): Promise<Node> {
  const dataDir = opts.dataDir ?? (await tempDir(t))
  const host = await createHost({ dataDir, listenHost, listenPort: opts.listenPort ?? 0, clusterKey })
  const logs: string[] = []
  const transport = await RaftTransport.create(host, { logger: collectingLogger(logs), ...opts.transport })
  const inbox: Node['inbox'] = []
  transport.onMessage((from, message) => inbox.push({ from, message: message as Record<string, unknown> }))
  t.teardown(async () => {
    await transport.close()
    await host.stop()
  })
  return { host, transport, dataDir, inbox, logs }
}

/** Tell `from` where `to` listens (no connection is made yet). */
function introduce(from: Node, to: Node): void {
  from.transport.setPeerAddresses(to.host.peerId, to.host.multiaddrs())
}

async function until(what: string, cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

function raftStreams(host: ShoalHost, peerId: string): number {
  return host.libp2p
    .getConnections()
    .filter((c) => c.remotePeer.toString() === peerId)
    .flatMap((c) => c.streams)
    .filter((s) => s.protocol === RAFT_PROTOCOL).length
}

test.serial('10,000 messages arrive in order over one stream, from the authenticated sender', async (t) => {
  const a = await node(t, '127.0.0.51')
  const b = await node(t, '127.0.0.52')
  introduce(a, b)
  // one message first: the time to dial, handshake and open the stream
  const t0 = performance.now()
  a.transport.send(b.host.peerId, { type: 'hello' })
  await until('first message', () => b.inbox.length === 1)
  const connectMs = performance.now() - t0
  b.inbox.length = 0

  const n = 10_000
  const entry = { index: 0, term: 3, type: 'normal', data: new Uint8Array(64).fill(7) }
  const t1 = performance.now()
  for (let i = 0; i < n; i++) {
    // a small AppendEntries-like message; its `from` field is a lie the receiver must ignore
    a.transport.send(b.host.peerId, { type: 'append', from: 'mallory', term: 3, seq: i, entries: [{ ...entry, index: i }] })
  }
  await until('all messages', () => b.inbox.length >= n)
  const ms = performance.now() - t1
  const size = encode({ type: 'append', from: 'mallory', term: 3, seq: 1, entries: [entry] }).byteLength
  t.log(`first message (dial + stream): ${connectMs.toFixed(0)} ms`)
  t.log(`throughput: ${n} messages of ~${size} B in ${ms.toFixed(0)} ms = ${Math.round((n / ms) * 1000)} msg/s`)

  t.is(b.inbox.length, n)
  t.true(b.inbox.every((m, i) => m.message.seq === i), 'in order')
  t.true(b.inbox.every((m) => m.from === a.host.peerId), 'sender is the connection peer')
  const entries = b.inbox[42]?.message.entries as Array<{ index: number; data: Uint8Array }>
  t.is(entries[0]?.index, 42)
  t.deepEqual(new Uint8Array(entries[0]?.data ?? []), entry.data)
  t.is(a.transport.stats().sent, n + 1)
  t.is(a.transport.stats().dropped, 0)
  t.is(a.transport.stats().streamsOpened, 1)
  t.is(b.transport.stats().streamsAccepted, 1)
  t.is(b.transport.stats().received, n + 1)
  t.is(raftStreams(a.host, b.host.peerId), 1)

  // a second burst, after the queue went idle, reuses the same stream
  for (let i = n; i < n + 100; i++) a.transport.send(b.host.peerId, { type: 'append', seq: i })
  await until('second burst', () => b.inbox.length >= n + 100)
  t.true(b.inbox.every((m, i) => m.message.seq === i))
  t.is(a.transport.stats().streamsOpened, 1)
  t.is(b.transport.stats().streamsAccepted, 1)
  t.is(raftStreams(a.host, b.host.peerId), 1)
  t.deepEqual(a.logs.filter((l) => l.startsWith('WARN')), [])
})

test('after the receiver restarts (same identity and port) the sender reconnects and delivers', async (t) => {
  const a = await node(t, '127.0.0.53', { transport: { backoffMaxMs: 200 } })
  const b1 = await node(t, '127.0.0.54')
  introduce(a, b1)
  a.transport.send(b1.host.peerId, { n: 1 })
  await until('first message', () => b1.inbox.length === 1)
  const port = Number(/\/tcp\/(\d+)/.exec(b1.host.multiaddrs()[0] ?? '')?.[1])

  await b1.transport.close()
  await b1.host.stop()
  // sent while the receiver is down: queued, retried with backoff
  a.transport.send(b1.host.peerId, { n: 2 })
  await new Promise((resolve) => setTimeout(resolve, 300))

  const b2 = await node(t, '127.0.0.54', { dataDir: b1.dataDir, listenPort: port })
  t.is(b2.host.peerId, b1.host.peerId)
  for (let i = 3; i <= 5; i++) a.transport.send(b2.host.peerId, { n: i })
  await until('messages after restart', () => b2.inbox.some((m) => m.message.n === 5))
  const got = b2.inbox.map((m) => m.message.n as number)
  t.deepEqual(got.filter((n) => n >= 3), [3, 4, 5])
  t.true(got.every((n, i) => i === 0 || n > (got[i - 1] as number)), `in order: ${got.join(',')}`)
  t.true(a.transport.stats().streamsOpened >= 2)
  t.log(`after restart: ${got.join(',')}; sender stats ${JSON.stringify(a.transport.stats())}`)
})

test('malformed frames are counted and dropped; the stream and the transport keep working', async (t) => {
  const a = await node(t, '127.0.0.55')
  const b = await node(t, '127.0.0.56')
  await a.host.dial(b.host.multiaddrs()[0] as string)

  // raw frames on a raft stream: garbage, a non-map, a truncated document, then a good one
  const raw = await a.host.libp2p.dialProtocol(b.host.libp2p.peerId, RAFT_PROTOCOL)
  const lp = lpStream(raw)
  const good = encode({ hello: 'world' })
  await lp.writeV([
    new Uint8Array([0xc1, 0xc1, 0xc1]),
    encode([1, 2, 3]),
    encode(42),
    good.subarray(0, good.byteLength - 2),
    good,
  ])
  await until('good frame', () => b.inbox.length === 1)
  t.deepEqual(b.inbox[0], { from: a.host.peerId, message: { hello: 'world' } })
  t.is(b.transport.stats().malformed, 4)
  t.is(b.transport.stats().received, 1)
  t.is(b.logs.filter((l) => l.includes('malformed')).length, 4)
  t.is(raw.status, 'open', 'a bad document does not cost the stream')

  // a broken length prefix loses the framing: that stream is reset, nothing else
  raw.send(new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]))
  await until('stream reset', () => raw.status !== 'open')
  t.is(b.transport.stats().malformed, 5)

  // a length beyond maxFrameBytes: same
  const raw2 = await a.host.libp2p.dialProtocol(b.host.libp2p.peerId, RAFT_PROTOCOL)
  raw2.send(new Uint8Array([0x80, 0x80, 0x80, 0x40])) // 128 MiB > the 64 MiB default
  await until('second stream reset', () => raw2.status !== 'open')
  t.is(b.transport.stats().malformed, 6)
  t.is(b.logs.filter((l) => l.includes('resetting its raft stream')).length, 2)

  // the transport proper still works in both directions
  a.transport.send(b.host.peerId, { after: 1 })
  b.transport.send(a.host.peerId, { after: 2 })
  await until('messages after malformed frames', () => b.inbox.length === 2 && a.inbox.length === 1)
  t.deepEqual(b.inbox[1]?.message, { after: 1 })
  t.deepEqual(a.inbox[0]?.message, { after: 2 })
})

test('three hosts all exchange messages', async (t) => {
  const nodes = await Promise.all(['127.0.0.57', '127.0.0.58', '127.0.0.59'].map((ip) => node(t, ip)))
  for (const x of nodes) for (const y of nodes) if (x !== y) introduce(x, y)
  const perPair = 200
  for (let i = 0; i < perPair; i++) {
    for (const x of nodes) for (const y of nodes) if (x !== y) x.transport.send(y.host.peerId, { i, to: y.host.peerId })
  }
  await until('all messages', () => nodes.every((x) => x.inbox.length === perPair * 2))
  for (const x of nodes) {
    for (const y of nodes) {
      if (x === y) continue
      const fromY = x.inbox.filter((m) => m.from === y.host.peerId).map((m) => m.message.i)
      t.deepEqual(fromY, Array.from({ length: perPair }, (_, i) => i))
    }
    t.true(x.inbox.every((m) => m.message.to === x.host.peerId))
    t.is(x.transport.stats().streamsOpened, 2)
    t.is(x.transport.stats().streamsAccepted, 2)
  }
})

test('a full queue drops the oldest messages and counts them; unknown peers are reported', async (t) => {
  const a = await node(t, '127.0.0.60', { transport: { maxQueue: 100 } })
  const b = await node(t, '127.0.0.61')
  introduce(a, b)
  // all sent within one tick, so nothing leaves the queue meanwhile
  for (let i = 0; i < 1000; i++) a.transport.send(b.host.peerId, { i })
  t.is(a.transport.stats().dropped, 900)
  t.is(a.transport.stats().queued, 100)
  await until('the newest 100', () => b.inbox.length === 100)
  t.deepEqual(b.inbox.map((m) => m.message.i), Array.from({ length: 100 }, (_, i) => 900 + i))

  // a peer nobody told us about: messages wait (bounded), the failure is logged once per streak
  const stranger = await node(t, '127.0.0.62')
  a.transport.send(stranger.host.peerId, { lost: true })
  await until('open failure', () => a.transport.stats().openFailures >= 1)
  t.true(a.logs.some((l) => l.includes(`cannot open raft stream to ${stranger.host.peerId}`)), a.logs.join('\n'))
  t.is(a.transport.stats().queued, 1)
  // learning the address lets the queued message through
  introduce(a, stranger)
  await until('delivery after setPeerAddresses', () => stranger.inbox.length === 1, 5000)
  t.deepEqual(stranger.inbox[0]?.message, { lost: true })

  // nonsense input never throws
  a.transport.send('not-a-peer-id', { x: 1 })
  t.is(a.transport.stats().dropped, 901)
  t.is(a.transport.setPeerAddresses(b.host.peerId, [stranger.host.multiaddrs()[0] as string, 'nonsense', '127.0.0.61:1']), 1)
  t.true(a.logs.some((l) => l.includes(`for ${b.host.peerId}: it belongs to ${stranger.host.peerId}`)))
  t.true(a.logs.some((l) => l.includes('ignoring address "nonsense"')))
  t.is(a.transport.setPeerAddresses('not-a-peer-id', ['127.0.0.1:1']), 0)

  // removing a peer drops what is queued for it
  const ghost = (await loadOrCreateIdentity(await tempDir(t))).peerId
  a.transport.send(ghost, { boo: 1 })
  t.is(a.transport.peerStats(ghost)?.queued, 1)
  a.transport.removePeer(ghost)
  t.is(a.transport.peerStats(ghost), undefined)
  t.is(a.transport.stats().dropped, 902)
  t.is(a.transport.stats().queued, 0)
})

test('a snapshot-sized message (6 MiB, above libp2p\'s 4 MiB buffer defaults) arrives intact', async (t) => {
  const a = await node(t, '127.0.0.63')
  const b = await node(t, '127.0.0.64')
  introduce(a, b)
  const data = new Uint8Array(6 * 1024 * 1024)
  for (let i = 0; i < data.length; i += 4096) data[i] = i % 251
  a.transport.send(b.host.peerId, { type: 'snapshot', data })
  a.transport.send(b.host.peerId, { type: 'after' })
  await until('snapshot', () => b.inbox.length === 2)
  t.is(b.inbox[0]?.message.type, 'snapshot')
  t.true(Buffer.from(data).equals(b.inbox[0]?.message.data as Uint8Array))
  t.is(b.inbox[1]?.message.type, 'after')
})
