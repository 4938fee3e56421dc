import { Args, Flags } from '@oclif/core'
import { fail } from '../../cli/output.ts'
import { ApiCommand } from '../base.ts'

export default class NodeEligibility extends ApiCommand {
  static override description = `Allow or stop new placements on a node.

An ineligible node keeps running what it runs; the scheduler places nothing
new there (job plan explains: "ineligible for scheduling"). A draining node
stays ineligible until its drain ends.`

  static override examples = ['<%= config.bin %> node eligibility dev-1 --disable', '<%= config.bin %> node eligibility dev-1 --enable']
  static override enableJsonFlag = true
  static override args = { node: Args.string({ description: 'node name, id, or a unique start or end of its id', required: true }) }
  static override flags = {
    enable: Flags.boolean({ description: 'make the node eligible for new placements', default: false }),
    disable: Flags.boolean({ description: 'make the node ineligible for new placements', default: false }),
  }

  async run(): Promise<unknown> {
    const { args, flags } = await this.parse(NodeEligibility)
    if (flags.enable === flags.disable) fail(this, 'give exactly one of --enable or --disable')
    const res = await this.api(flags.address).post<{ name: string; nodeId: string; eligibility: string }>(
      `/v1/node/${encodeURIComponent(args.node)}/eligibility`, { eligibility: flags.enable ? 'eligible' : 'ineligible' })
    this.log(`Node "${res.name}" (${res.nodeId}) is ${res.eligibility} for scheduling`)
    return res
  }
}
