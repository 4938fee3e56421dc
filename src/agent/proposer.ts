// The one seam every write goes through. In dev mode (one agent, no Raft) the
// LocalProposer applies commands in order; under Raft the node's proposer
// replicates them first. Both carry the same encoded bytes.
import { decode, encode } from '../fsm/codec.ts'
import type { ApplyResult, Command } from '../fsm/commands.ts'
import type { Fsm } from '../fsm/fsm.ts'

export interface Proposer {
  propose(command: Command): Promise<ApplyResult>
}

export class LocalProposer implements Proposer {
  readonly #fsm: Fsm
  #tail: Promise<unknown> = Promise.resolve()

  constructor(fsm: Fsm) {
    this.#fsm = fsm
  }

  propose(command: Command): Promise<ApplyResult> {
    // Encode now so a command that cannot be serialised fails its caller, not the log.
    const bytes = encode(command)
    const next = this.#tail.then(() => this.#fsm.apply(this.#fsm.appliedIndex + 1, decode<Command>(bytes)))
    this.#tail = next.catch(() => undefined)
    return next
  }
}
