// Writes and linearizable reads under Raft. On the leader a command is
// proposed to the local RaftNode; elsewhere it is forwarded to the leader
// over the cluster RPC. Retries ride out a leader change, within a deadline.
import { decode, encode } from '../fsm/codec.ts'
import type { ApplyResult, Command } from '../fsm/commands.ts'
import type { Fsm } from '../fsm/fsm.ts'
import { NotLeaderError, OutcomeUnknownError, type RaftNode, type RaftStateMachine } from '../raft/node.ts'
import type { Proposer } from './proposer.ts'
import { RemoteError, type ClusterRpc } from './rpc.ts'

const WRITE_DEADLINE_MS = 7_000

/** No leader could be reached before the deadline: nothing was written. */
export class NoLeaderError extends Error {
  override name = 'NoLeaderError'
}

export function errorCode(err: unknown): string {
  if (err instanceof NotLeaderError) return 'not-leader'
  if (err instanceof OutcomeUnknownError) return 'outcome-unknown'
  if (err instanceof NoLeaderError) return 'no-leader'
  if (err instanceof RemoteError) return err.code
  return 'error'
}

/** The FSM as Raft's state machine: entries carry msgpackr-encoded commands. */
export function fsmStateMachine(fsm: Fsm): RaftStateMachine {
  return {
    get appliedIndex() {
      return fsm.appliedIndex
    },
    applyEntries: (entries) => fsm.applyBatch(entries.map((e) => ({ index: e.index, command: decode<Command>(e.data) }))),
    snapshot: () => fsm.snapshot(),
    restore: (data) => fsm.restore(data),
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

export class RaftProposer implements Proposer {
  #raft: RaftNode
  readonly #rpc: ClusterRpc | null

  constructor(raft: RaftNode, rpc: ClusterRpc | null) {
    this.#raft = raft
    this.#rpc = rpc
    this.attach(raft)
    rpc?.handle('propose', async (_from, body) => {
      if (!this.#raft.isLeader) throw new NotLeaderError(this.#raft.leader)
      return (await this.#raft.propose(body as Uint8Array)).result
    })
    rpc?.handle('readIndex', async () => {
      if (!this.#raft.isLeader) throw new NotLeaderError(this.#raft.leader)
      return this.#raft.readBarrier()
    })
  }

  /** Follows `raft` from now on (the agent replaced its Raft node to join another cluster). */
  attach(raft: RaftNode): void {
    this.#raft = raft
    let lastLeader: string | null = raft.leader
    raft.on('softState', (s) => {
      if (lastLeader && s.leader !== lastLeader) {
        this.#rpc?.cancelPeer(lastLeader, 'leader-changed', `leader ${lastLeader} was replaced before it answered`)
      }
      lastLeader = s.leader
    })
  }

  async propose(command: Command): Promise<ApplyResult> {
    const bytes = encode(command)
    const result = await this.#toLeader(async () => (await this.#raft.propose(bytes)).result as ApplyResult, 'propose', bytes)
    // Read your writes: a write forwarded to the leader is answered once this
    // agent has applied it too, so what the caller reads next includes it.
    if (!(await this.#raft.waitApplied(result.index, WRITE_DEADLINE_MS))) {
      throw new OutcomeUnknownError(`write committed at index ${result.index} but not yet applied on this agent`)
    }
    return result
  }

  /** Resolves once this agent's state reflects every write acknowledged before the call. */
  async readBarrier(): Promise<void> {
    const index = await this.#toLeader(() => this.#raft.readBarrier(), 'readIndex', null)
    // Raft's applied index, not the FSM's: the last committed entry may be a membership change.
    if (!(await this.#raft.waitApplied(index, WRITE_DEADLINE_MS))) throw new OutcomeUnknownError(`state did not reach index ${index} in time`)
  }

  async #toLeader<T>(local: () => Promise<T>, method: string, body: unknown): Promise<T> {
    const deadline = Date.now() + WRITE_DEADLINE_MS
    let last: unknown
    while (Date.now() < deadline) {
      try {
        if (this.#raft.isLeader) return await local()
        const leader = this.#raft.leader
        if (leader && this.#rpc) return await this.#rpc.call<T>(leader, method, body, deadline - Date.now())
      } catch (err) {
        const code = errorCode(err)
        // A forwarded write that timed out or lost its leader may have been applied: never resend it.
        if ((code === 'timeout' || code === 'leader-changed') && method === 'propose') throw new OutcomeUnknownError((err as Error).message)
        if (code !== 'not-leader' && code !== 'timeout' && code !== 'leader-changed') throw err
        last = err
      }
      await sleep(50)
    }
    throw new NoLeaderError(`no cluster leader reachable within ${WRITE_DEADLINE_MS / 1000}s${last ? ` (${(last as Error).message})` : ''}`)
  }
}
