import { Command } from '@oclif/core'
import { DEFAULT_HTTP_PORT, DEFAULT_P2P_PORT } from '../agent/defaults.ts'
import { AGENT_FLAGS, runAgent } from '../cli/agent.ts'
import { fail } from '../cli/output.ts'
import { oclifFlags } from './flag-table.ts'

export default class AgentCommand extends Command {
  static override description = `Run a Shoal agent.

The first agent started without --join bootstraps a cluster; others join it with
--join (any member's --bind address). The leader keeps --voters Raft voters by
promoting joined agents; the rest follow the log as learners. With --dev the
agent is a one-node cluster without networking.

The HTTP API listens on --http (default 127.0.0.1:${DEFAULT_HTTP_PORT}); libp2p listens
on --bind (default 127.0.0.1:${DEFAULT_P2P_PORT}), whose host is also the address
allocations publish their ports on. Tasks keep running when the agent stops:
a restarted agent re-attaches to them.`

  static override examples = [
    '<%= config.bin %> agent --dev',
    '<%= config.bin %> agent --data-dir /var/lib/shoal --name edge-1 --bind 10.0.0.1 --http 10.0.0.1:4680',
    '<%= config.bin %> agent --data-dir /var/lib/shoal --name edge-2 --bind 10.0.0.2 --join 10.0.0.1:4681',
  ]

  static override flags = oclifFlags(AGENT_FLAGS)

  async run(): Promise<void> {
    const { flags } = await this.parse(AgentCommand)
    await runAgent(flags, (message) => fail(this, message))
  }
}
