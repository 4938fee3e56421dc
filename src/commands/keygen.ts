import { Args, Command, Flags } from '@oclif/core'
import { writeFile } from 'node:fs/promises'
import { generateClusterKey } from '../gossip/cluster-key.ts'
import { fail } from '../cli/output.ts'

export default class Keygen extends Command {
  static override description = `Create a cluster pre-shared key.

Every agent of a cluster must be started with the same key
(--cluster-key-file); agents with another key cannot connect.`

  static override examples = ['<%= config.bin %> keygen cluster.key', '<%= config.bin %> keygen > cluster.key']
  static override args = { file: Args.string({ description: 'file to write (mode 0600); prints to stdout when omitted' }) }
  static override flags = { force: Flags.boolean({ description: 'overwrite an existing file', default: false }) }

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Keygen)
    const key = generateClusterKey()
    if (!args.file) {
      process.stdout.write(key)
      return
    }
    try {
      await writeFile(args.file, key, { mode: 0o600, flag: flags.force ? 'w' : 'wx' })
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      fail(this, `file: cannot write "${args.file}": ${code === 'EEXIST' ? 'it exists (use --force to overwrite)' : (err as Error).message}`)
    }
    this.log(`cluster key written to ${args.file}; start every agent with --cluster-key-file ${args.file}`)
  }
}
