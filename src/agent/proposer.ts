// The one seam every write goes through: the agent's RaftProposer replicates
// commands (forwarding to the leader when needed) before they are applied.
import type { ApplyResult, Command } from '../fsm/commands.ts'

export interface Proposer {
  propose(command: Command): Promise<ApplyResult>
}
