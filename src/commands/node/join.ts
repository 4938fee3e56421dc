import { Args } from '@oclif/core'
import { ApiCommand } from '../base.ts'

export default class NodeJoin extends ApiCommand {
  static override description = `Make the agent at --address join the cluster PEER belongs to.

Only an agent whose own one-node cluster holds nothing (no jobs, variables or
allocations) can move; it joins as a learner and the leader promotes it to
voter while the cluster has fewer than --voters.`

  static override examples = ['<%= config.bin %> node join 10.0.0.1:4681', '<%= config.bin %> node join /ip4/10.0.0.1/tcp/4681 --address http://10.0.0.2:4680']
  static override enableJsonFlag = true
  static override args = { peer: Args.string({ description: 'a member of the cluster to join: multiaddr or host:port of its --bind', required: true }) }

  async run(): Promise<{ joined: boolean; message: string }> {
    const { args, flags } = await this.parse(NodeJoin)
    const res = await this.api(flags.address).post<{ joined: boolean; message: string }>('/v1/agent/join', { peer: args.peer })
    this.log(res.message)
    return res
  }
}
