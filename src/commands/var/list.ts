import { Args } from '@oclif/core'
import { ApiCommand } from '../base.ts'
import { ago, table } from '../../cli/format.ts'

interface VarMeta { path: string; modifyIndex: number; modifyTime: number }

export default class VarList extends ApiCommand {
  static override description = 'List variables, optionally under a path prefix'
  static override examples = ['<%= config.bin %> var list', '<%= config.bin %> var list app/']
  static override enableJsonFlag = true
  static override args = { prefix: Args.string({ description: 'path prefix' }) }

  async run(): Promise<VarMeta[]> {
    const { args, flags } = await this.parse(VarList)
    const vars = await this.api(flags.address).get<VarMeta[]>(`/v1/vars?prefix=${encodeURIComponent(args.prefix ?? '')}`)
    this.log(vars.length ? table(['Path', 'Modify Index', 'Modified'], vars.map((v) => [v.path, v.modifyIndex, ago(v.modifyTime)])) : 'No variables')
    return vars
  }
}
