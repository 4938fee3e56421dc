import { Args, Flags } from '@oclif/core'
import { ApiCommand } from '../base.ts'

export default class VarRm extends ApiCommand {
  static override description = 'Delete a variable'
  static override examples = ['<%= config.bin %> var rm app/greeting', '<%= config.bin %> var rm app/greeting --cas 12']
  static override enableJsonFlag = true
  static override args = { path: Args.string({ description: 'variable path', required: true }) }
  static override flags = {
    cas: Flags.integer({ description: 'check-and-set: only if the modify index is N', min: 0 }),
  }

  async run(): Promise<unknown> {
    const { args, flags } = await this.parse(VarRm)
    const q = flags.cas !== undefined ? `?cas=${flags.cas}` : ''
    const res = await this.api(flags.address).delete<{ path: string }>(`/v1/var/${args.path}${q}`)
    this.log(`${res.path} deleted`)
    return res
  }
}
