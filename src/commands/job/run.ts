import { Args, Flags } from '@oclif/core'
import { readFile } from 'node:fs/promises'
import { parseJobText } from '../../jobspec/index.ts'
import { ApiCommand, fail } from '../base.ts'
import { followSubmission } from '../monitor.ts'

export default class JobRun extends ApiCommand {
  static override description = `Submit a job file and follow its placement.

Exit codes: 0 placed and running, 1 error or allocation failed,
2 some allocations could not be placed (the reasons are printed).`

  static override examples = ['<%= config.bin %> job run examples/web.json', '<%= config.bin %> job run web.json --detach']
  static override enableJsonFlag = true
  static override args = { file: Args.string({ description: 'job file (JSON)', required: true }) }
  static override flags = {
    detach: Flags.boolean({ description: 'return once the job is submitted', default: false }),
    'check-index': Flags.integer({ description: 'register only if the job\'s modify index is N (0: only if it does not exist yet)', min: 0 }),
    timeout: Flags.integer({ description: 'seconds to wait for allocations to start', default: 60, min: 1 }),
  }

  async run(): Promise<unknown> {
    const { args, flags } = await this.parse(JobRun)
    let text: string
    try {
      text = await readFile(args.file, 'utf8')
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      fail(this, `file: cannot read "${args.file}": ${code === 'ENOENT' ? 'no such file' : (err as Error).message}`, 1)
    }
    const parsed = parseJobText(text)
    if (!parsed.ok) {
      for (const e of parsed.errors) process.stderr.write(`Error: ${e.field}: ${e.message}\n`)
      this.exit(1)
    }
    const api = this.api(flags.address)
    const q = flags['check-index'] !== undefined ? `?check_index=${flags['check-index']}` : ''
    const submitted = await api.post<{ jobId: string; evalId: string; version: number }>(`/v1/jobs${q}`, JSON.parse(text.replace(/^\uFEFF/, '')))
    this.log(`==> Job "${submitted.jobId}" version ${submitted.version} submitted; evaluation ${submitted.evalId}`)
    if (flags.detach) return submitted
    const result = await followSubmission(this, api, submitted, flags.timeout)
    return { ...submitted, allocations: result.allocations }
  }
}
