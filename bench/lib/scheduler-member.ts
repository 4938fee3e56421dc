// One Raft voter on its own thread (worker_threads), for the placement
// benchmark's threaded mode: RaftNode over LevelDB (fsync on) with the FSM as
// its state machine, exchanging encoded messages with the other members over
// MessagePorts. The main thread asks it to wait for an index, report, stop.
import { parentPort, workerData, type MessagePort } from 'node:worker_threads'
import { join } from 'node:path'
import { fsmStateMachine } from '../../src/agent/raft-proposer.ts'
import { decode, encode } from '../../src/fsm/codec.ts'
import { Fsm } from '../../src/fsm/fsm.ts'
import { RaftNode } from '../../src/raft/node.ts'
import { RaftStorage } from '../../src/raft/storage.ts'
import type { Message } from '../../src/raft/types.ts'

export interface MemberData {
  id: string
  root: string
  voters: string[]
  electionTick: number
}

/** Main thread → member. */
export type MemberRequest =
  | { type: 'peers'; ports: Record<string, MessagePort> }
  | { type: 'start' }
  | { type: 'waitApplied'; index: number; seq: number }
  | { type: 'report'; seq: number }
  | { type: 'stop'; seq: number }

export interface MemberReport { appliedIndex: number; allocs: number; isLeader: boolean }

async function main(): Promise<void> {
  const port = parentPort!
  const data = workerData as MemberData
  const fsm = new Fsm()
  const storage = await RaftStorage.open(join(data.root, data.id, 'raft'))
  const peers = new Map<string, MessagePort>()
  const raft = await RaftNode.open({
    id: data.id, storage, stateMachine: fsmStateMachine(fsm), voters: data.voters, electionTick: data.electionTick,
    log: { info: () => undefined, warn: (m) => console.warn(`  [raft ${data.id}] ${m}`) },
    transport: {
      send: (to: string, m: Message) => {
        const copy = new Uint8Array(encode(m))
        peers.get(to)?.postMessage(copy, [copy.buffer])
      },
    },
  })
  port.on('message', (req: MemberRequest) => {
    switch (req.type) {
      case 'peers':
        for (const [id, p] of Object.entries(req.ports)) {
          peers.set(id, p)
          p.on('message', (frame: Uint8Array) => raft.receive(id, decode(frame)))
        }
        return
      case 'start':
        raft.start()
        return
      case 'waitApplied':
        void fsm.waitForIndex(req.index, 120_000).then((ok) => port.postMessage({ seq: req.seq, ok }))
        return
      case 'report': {
        const r: MemberReport = { appliedIndex: fsm.state.appliedIndex, allocs: fsm.state.tables.allocs.size, isLeader: raft.isLeader }
        port.postMessage({ seq: req.seq, report: r })
        return
      }
      case 'stop':
        void (async () => {
          await raft.stop()
          await storage.close()
          for (const p of peers.values()) p.close()
          port.postMessage({ seq: req.seq, ok: true })
        })()
        return
    }
  })
  port.postMessage({ ready: true })
}

await main()
