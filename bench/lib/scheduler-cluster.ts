// Three Raft voters in one process, as the agent wires them: RaftNode over
// real LevelDB storage (every Ready fsynced), the FSM (LevelDB, not synced:
// the Raft log is the durable record) as the state machine, and an in-memory
// transport that still encodes and decodes every message as the wire would.
//
// Two layouts: all three members on the main thread (they share one CPU, as
// if three servers ran on one core), or the first member (the one that gets
// elected, and the one the benchmark's broker runs on) on the main thread and
// the others each on a worker thread, messages crossing over MessagePorts.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads'
import { fsmStateMachine, RaftProposer } from '../../src/agent/raft-proposer.ts'
import { decode, encode } from '../../src/fsm/codec.ts'
import { Fsm } from '../../src/fsm/fsm.ts'
import { RaftNode } from '../../src/raft/node.ts'
import { RaftStorage } from '../../src/raft/storage.ts'
import type { Message } from '../../src/raft/types.ts'
import type { MemberData, MemberReport, MemberRequest } from './scheduler-member.ts'

export interface Member {
  id: string
  raft: RaftNode
  fsm: Fsm
  storage: RaftStorage
}

const quiet = { info: () => undefined, warn: (m: string) => console.warn(`  [raft] ${m}`) }

/** A member on a worker thread, driven by requests. */
class Remote {
  readonly id: string
  readonly worker: Worker
  #seq = 0
  readonly #waiting = new Map<number, (v: unknown) => void>()
  readonly ready: Promise<void>

  constructor(id: string, data: MemberData) {
    this.id = id
    this.worker = new Worker(new URL('./scheduler-member.ts', import.meta.url), { workerData: data })
    let onReady: () => void = () => undefined
    this.ready = new Promise((r) => { onReady = r })
    this.worker.on('message', (m: { ready?: boolean; seq?: number; ok?: boolean; report?: MemberReport }) => {
      if (m.ready) onReady()
      if (m.seq !== undefined) {
        this.#waiting.get(m.seq)?.(m.report ?? m.ok)
        this.#waiting.delete(m.seq)
      }
    })
    this.worker.on('error', (err) => console.error(`  [member ${id}] ${err.stack ?? err.message}`))
  }

  send(req: MemberRequest, transfer: MessagePort[] = []): void {
    this.worker.postMessage(req, transfer)
  }

  ask<T>(make: (seq: number) => MemberRequest): Promise<T> {
    const seq = ++this.#seq
    return new Promise<T>((resolve) => {
      this.#waiting.set(seq, resolve as (v: unknown) => void)
      this.worker.postMessage(make(seq))
    })
  }
}

export class InProcessCluster {
  /** Members on the main thread (all three, or the first one). */
  readonly members: Member[] = []
  readonly #remotes: Remote[] = []
  readonly root: string
  readonly threads: boolean
  /** Bytes of encoded messages sent by members on the main thread. */
  bytesSent = 0

  private constructor(root: string, threads: boolean) {
    this.root = root
    this.threads = threads
  }

  static async start(options: { size?: number; threads?: boolean } = {}): Promise<InProcessCluster> {
    const size = options.size ?? 3
    const c = new InProcessCluster(await mkdtemp(join(tmpdir(), 'shoal-sched-bench-')), options.threads ?? false)
    const ids = Array.from({ length: size }, (_, i) => `m${i + 1}`)
    const local = c.threads ? ids.slice(0, 1) : ids
    const ports = new Map<string, MessagePort>()
    for (const id of local) {
      const fsm = new Fsm()
      const storage = await RaftStorage.open(join(c.root, id, 'raft'))
      const raft = await RaftNode.open({
        id, storage, stateMachine: fsmStateMachine(fsm), voters: ids, log: quiet,
        transport: { send: (to, m) => c.#deliver(id, to, m, ports) },
      })
      c.members.push({ id, raft, fsm, storage })
    }
    if (c.threads) {
      // The main-thread member times out first and so is elected; the others wait longer.
      for (const id of ids.slice(1)) c.#remotes.push(new Remote(id, { id, root: c.root, voters: ids, electionTick: 40 }))
      await Promise.all(c.#remotes.map((r) => r.ready))
      const first = c.members[0]!
      const remotePorts = new Map<string, Record<string, MessagePort>>(c.#remotes.map((r) => [r.id, {}]))
      for (const r of c.#remotes) {
        const ch = new MessageChannel()
        ports.set(r.id, ch.port1)
        ch.port1.on('message', (frame: Uint8Array) => first.raft.receive(r.id, decode(frame)))
        remotePorts.get(r.id)![first.id] = ch.port2
      }
      for (let i = 0; i < c.#remotes.length; i++) {
        for (let j = i + 1; j < c.#remotes.length; j++) {
          const ch = new MessageChannel()
          remotePorts.get(c.#remotes[i]!.id)![c.#remotes[j]!.id] = ch.port1
          remotePorts.get(c.#remotes[j]!.id)![c.#remotes[i]!.id] = ch.port2
        }
      }
      for (const r of c.#remotes) {
        const mine = remotePorts.get(r.id)!
        r.send({ type: 'peers', ports: mine }, Object.values(mine))
        r.send({ type: 'start' })
      }
    }
    for (const m of c.members) m.raft.start()
    return c
  }

  #deliver(from: string, to: string, m: Message, ports: ReadonlyMap<string, MessagePort>): void {
    const frame = encode(m)
    this.bytesSent += frame.length
    const port = ports.get(to)
    if (port) {
      // A copy of just the frame's bytes, handed over (the encoder's buffer is shared).
      const copy = new Uint8Array(frame)
      port.postMessage(copy, [copy.buffer])
      return
    }
    const target = this.members.find((x) => x.id === to)
    if (target) setImmediate(() => target.raft.receive(from, decode(frame)))
  }

  /** The leader, which must be a main-thread member (the broker runs there). */
  async leader(timeoutMs = 15_000): Promise<Member> {
    const end = Date.now() + timeoutMs
    while (Date.now() < end) {
      const l = this.members.find((m) => m.raft.isLeader)
      if (l) return l
      await new Promise((r) => setTimeout(r, 20))
    }
    throw new Error('no leader elected on the main thread')
  }

  proposer(leader: Member): RaftProposer {
    return new RaftProposer(leader.raft, null)
  }

  /** Resolves once every member's FSM has applied `index`. */
  async allApplied(index: number, timeoutMs = 120_000): Promise<void> {
    const ok = await Promise.all([
      ...this.members.map((m) => m.fsm.waitForIndex(index, timeoutMs)),
      ...this.#remotes.map((r) => r.ask<boolean>((seq) => ({ type: 'waitApplied', index, seq }))),
    ])
    if (!ok.every(Boolean)) throw new Error(`members did not reach index ${index} in time`)
  }

  /** Every member's applied index and allocation count. */
  async reports(): Promise<(MemberReport & { id: string })[]> {
    const local = this.members.map((m) => ({ id: m.id, appliedIndex: m.fsm.state.appliedIndex, allocs: m.fsm.state.tables.allocs.size, isLeader: m.raft.isLeader }))
    const remote = await Promise.all(this.#remotes.map(async (r) => ({ id: r.id, ...(await r.ask<MemberReport>((seq) => ({ type: 'report', seq }))) })))
    return [...local, ...remote]
  }

  async stop(): Promise<void> {
    for (const m of this.members) await m.raft.stop()
    await Promise.all(this.#remotes.map((r) => r.ask<boolean>((seq) => ({ type: 'stop', seq }))))
    await Promise.all(this.#remotes.map((r) => r.worker.terminate()))
    for (const m of this.members) {
      await m.storage.close()
    }
    await rm(this.root, { recursive: true, force: true })
  }
}
