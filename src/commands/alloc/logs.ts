import { Args, Flags } from '@oclif/core'
import { ApiCommand } from '../base.ts'

export default class AllocLogs extends ApiCommand {
  static override description = 'Print the output of a task of an allocation (stdout unless --stderr)'
  static override examples = ['<%= config.bin %> alloc logs 3f2a9c1b', '<%= config.bin %> alloc logs 3f2a9c1b httpd -f --stderr']
  static override args = {
    alloc: Args.string({ description: 'allocation id or unique prefix', required: true }),
    task: Args.string({ description: 'task name (needed when the group has several tasks)' }),
  }
  static override flags = {
    follow: Flags.boolean({ char: 'f', description: 'keep printing new output', default: false }),
    stderr: Flags.boolean({ description: 'print stderr instead of stdout', default: false }),
    tail: Flags.integer({ description: 'only the last N lines', min: 0 }),
  }

  async run(): Promise<void> {
    const { args, flags } = await this.parse(AllocLogs)
    const q = new URLSearchParams({ type: flags.stderr ? 'stderr' : 'stdout', follow: String(flags.follow) })
    if (args.task) q.set('task', args.task)
    if (flags.tail !== undefined) q.set('tail', String(flags.tail))
    const abort = new AbortController()
    process.once('SIGINT', () => abort.abort())
    const body = await this.api(flags.address).stream(`/v1/client/allocation/${encodeURIComponent(args.alloc)}/logs?${q}`, abort.signal)
    try {
      for await (const chunk of body) process.stdout.write(chunk)
    } catch (err) {
      if ((err as Error).name !== 'AbortError') throw err
    }
  }
}
