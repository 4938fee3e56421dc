import { Args, Flags } from '@oclif/core'
import { fail } from '../../cli/output.ts'
import { ApiCommand } from '../base.ts'
import { followSubmission } from '../../cli/monitor.ts'

export default class JobRevert extends ApiCommand {
  static override description = 'Run an earlier version of a job again (as a new version); see "shoal job history"'
  static override examples = ['<%= config.bin %> job revert web 2']
  static override enableJsonFlag = true
  static override args = {
    job: Args.string({ description: 'job id', required: true }),
    version: Args.string({ description: 'the version to go back to', required: true }),
  }
  static override flags = {
    detach: Flags.boolean({ description: 'return once the change is submitted', default: false }),
    timeout: Flags.integer({ description: 'seconds to wait for the evaluation (and, for jobs without a deployment, for allocations to start)', default: 60, min: 1 }),
  }

  async run(): Promise<unknown> {
    const { args, flags } = await this.parse(JobRevert)
    const version = Number(args.version)
    if (!/^\d+$/.test(args.version) || !Number.isSafeInteger(version)) fail(this, `version: must be an integer ≥ 0 (got "${args.version}")`)
    const api = this.api(flags.address)
    const res = await api.post<{ jobId: string; evalId: string; version: number; revertedTo: number }>(`/v1/job/${encodeURIComponent(args.job)}/revert`, { version })
    this.log(`==> Job "${res.jobId}" reverted to version ${res.revertedTo} (now version ${res.version}); evaluation ${res.evalId}`)
    if (flags.detach) return res
    await followSubmission(this, api, res, flags.timeout, this.jsonEnabled())
    return res
  }
}
