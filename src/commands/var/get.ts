import { Args } from '@oclif/core'
import type { Variable } from '../../structs/index.ts'
import { ApiCommand } from '../base.ts'

export default class VarGet extends ApiCommand {
  static override description = 'Print the value of a variable'
  static override examples = ['<%= config.bin %> var get app/greeting', '<%= config.bin %> var get app/greeting --json']
  static override enableJsonFlag = true
  static override args = { path: Args.string({ description: 'variable path', required: true }) }

  async run(): Promise<Variable> {
    const { args, flags } = await this.parse(VarGet)
    const v = await this.api(flags.address).get<Variable>(`/v1/var/${args.path}`)
    this.log(v.value)
    return v
  }
}
