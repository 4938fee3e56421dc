import { Args, Flags } from '@oclif/core'
import { ApiCommand } from '../base.ts'
import { readJobFile } from '../job-file.ts'
import { followSubmission } from '../monitor.ts'

export default class JobRun extends ApiCommand {
  static override description = `Submit a job file and follow its placement and deployment.

A service job's new version is rolled out by a deployment (see the update
block); its progress is shown until it ends: on a terminal as a table redrawn
in place, otherwise as timestamped lines.

Exit codes: 0 deployment successful (jobs without one: placed and running),
1 error, allocation or deployment failed, 2 some allocations could not be
placed (the reasons are printed), 3 the deployment waits on you (canaries to
promote, paused).`

  static override examples = ['<%= config.bin %> job run examples/web.json', '<%= config.bin %> job run web.json --detach']
  static override enableJsonFlag = true
  static override args = { file: Args.string({ description: 'job file (JSON)', required: true }) }
  static override flags = {
    detach: Flags.boolean({ description: 'return once the job is submitted', default: false }),
    'check-index': Flags.integer({ description: 'register only if the job\'s modify index is N (0: only if it does not exist yet)', min: 0 }),
    timeout: Flags.integer({ description: 'seconds to wait for the evaluation (and, for jobs without a deployment, for allocations to start)', default: 60, min: 1 }),
  }

  async run(): Promise<unknown> {
    const { args, flags } = await this.parse(JobRun)
    const body = await readJobFile(this, args.file)
    const api = this.api(flags.address)
    const q = flags['check-index'] !== undefined ? `?check_index=${flags['check-index']}` : ''
    const submitted = await api.post<{ jobId: string; evalId: string; version: number }>(`/v1/jobs${q}`, body)
    this.log(`==> Job "${submitted.jobId}" version ${submitted.version} submitted; evaluation ${submitted.evalId}`)
    if (flags.detach) return submitted
    const result = await followSubmission(this, api, submitted, flags.timeout, this.jsonEnabled())
    return { ...submitted, allocations: result.allocations, ...(result.deployment ? { deployment: result.deployment } : {}) }
  }
}
