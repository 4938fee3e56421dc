import { Args, Flags } from '@oclif/core'
import { readFile } from 'node:fs/promises'
import { fail } from '../../cli/output.ts'
import { ApiCommand } from '../base.ts'

export default class VarPut extends ApiCommand {
  static override description = 'Set a variable; VALUE may be @FILE to read it from a file'
  static override examples = ['<%= config.bin %> var put app/greeting hello', '<%= config.bin %> var put app/cert @cert.pem --cas 0']
  static override enableJsonFlag = true
  static override args = {
    path: Args.string({ description: 'variable path, e.g. app/db/password', required: true }),
    value: Args.string({ description: 'the value, or @FILE', required: true }),
  }
  static override flags = {
    cas: Flags.integer({ description: 'check-and-set: only if the modify index is N (0: only if it does not exist)', min: 0 }),
  }

  async run(): Promise<unknown> {
    const { args, flags } = await this.parse(VarPut)
    let value = args.value
    if (value.startsWith('@')) {
      try {
        value = await readFile(value.slice(1), 'utf8')
      } catch (err) {
        fail(this, `value: cannot read "${value.slice(1)}": ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`)
      }
    }
    const q = flags.cas !== undefined ? `?cas=${flags.cas}` : ''
    const res = await this.api(flags.address).put<{ path: string; modifyIndex: number }>(`/v1/var/${args.path}${q}`, { value })
    this.log(`${res.path} set (modify index ${res.modifyIndex})`)
    return res
  }
}
