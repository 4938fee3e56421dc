import { Args } from '@oclif/core'
import { JOB_RUN_FLAGS, runJob } from '../../cli/job-run.ts'
import { ApiCommand } from '../base.ts'
import { oclifFlags } from '../flag-table.ts'

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
  static override flags = oclifFlags(JOB_RUN_FLAGS)

  async run(): Promise<unknown> {
    const { args, flags } = await this.parse(JobRun)
    return runJob(this, args.file, flags, this.jsonEnabled())
  }
}
