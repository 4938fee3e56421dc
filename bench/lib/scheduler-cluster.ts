// Three Raft voters in one process, as the agent wires them: RaftNode over
// real LevelDB storage (every Ready fsynced), the FSM (LevelDB, not synced:
// the Raft log is the durable record) as the state machine, and an in-memory
// transport that still encodes and decodes every message as the wire would.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fsmStateMachine, RaftProposer } from '../../src/agent/raft-proposer.ts'
import { decode, encode } from '../../src/fsm/codec.ts'
import { Fsm } from '../../src/fsm/fsm.ts'
import { RaftNode } from '../../src/raft/node.ts'
import { RaftStorage } from '../../src/raft/storage.ts'
import type { Message } from '../../src/raft/types.ts'

export interface Member {
  id: string
  raft: RaftNode
  fsm: Fsm
  storage: RaftStorage
}

const quiet = { info: () => undefined, warn: (m: string) => console.warn(`  [raft] ${m}`) }

export class InProcessCluster {
  readonly members: Member[] = []
  readonly root: string
  /** Bytes of encoded messages delivered between members. */
  bytesSent = 0

  private constructor(root: string) {
    this.root = root
  }

  static async start(size = 3): Promise<InProcessCluster> {
    const c = new InProcessCluster(await mkdtemp(join(tmpdir(), 'shoal-sched-bench-')))
    const ids = Array.from({ length: size }, (_, i) => `m${i + 1}`)
    for (const id of ids) {
      const fsm = await Fsm.open(join(c.root, id, 'state'), { syncWrites: false })
      const storage = await RaftStorage.open(join(c.root, id, 'raft'))
      const raft = await RaftNode.open({
        id, storage, stateMachine: fsmStateMachine(fsm), voters: ids, log: quiet,
        transport: { send: (to, m) => c.#deliver(id, to, m) },
      })
      c.members.push({ id, raft, fsm, storage })
    }
    for (const m of c.members) m.raft.start()
    return c
  }

  #deliver(from: string, to: string, m: Message): void {
    const target = this.members.find((x) => x.id === to)
    if (!target) return
    const frame = encode(m)
    this.bytesSent += frame.length
    setImmediate(() => target.raft.receive(from, decode(frame)))
  }

  async leader(timeoutMs = 10_000): Promise<Member> {
    const end = Date.now() + timeoutMs
    while (Date.now() < end) {
      const l = this.members.find((m) => m.raft.isLeader)
      if (l) return l
      await new Promise((r) => setTimeout(r, 20))
    }
    throw new Error('no leader elected')
  }

  proposer(leader: Member): RaftProposer {
    return new RaftProposer(leader.raft, null)
  }

  /** Resolves once every member's FSM has applied `index`. */
  async allApplied(index: number, timeoutMs = 120_000): Promise<void> {
    const ok = await Promise.all(this.members.map((m) => m.fsm.waitForIndex(index, timeoutMs)))
    if (!ok.every(Boolean)) throw new Error(`members did not reach index ${index} in time`)
  }

  async stop(): Promise<void> {
    for (const m of this.members) await m.raft.stop()
    for (const m of this.members) {
      await m.storage.close()
      await m.fsm.close()
    }
    await rm(this.root, { recursive: true, force: true })
  }
}
