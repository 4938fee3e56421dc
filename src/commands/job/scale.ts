import { Args, Flags } from '@oclif/core'
import { fail } from '../../cli/output.ts'
import { ApiCommand } from '../base.ts'
import { followSubmission } from '../../cli/monitor.ts'

export default class JobScale extends ApiCommand {
  static override description = `Change the count of a group.

This makes a new job version; running allocations are kept (moved to the new
version in place) and new ones are placed, or, scaling in, the least healthy
allocations stop first, then the newest.
A group with a scaling block accepts counts within its min and max; the change
is recorded in the group's scaling history (job status) and the autoscaler
waits for the cooldown before its next decision.`

  static override examples = ['<%= config.bin %> job scale web frontend 5']
  static override enableJsonFlag = true
  static override args = {
    job: Args.string({ description: 'job id', required: true }),
    group: Args.string({ description: 'group name', required: true }),
    count: Args.string({ description: 'new count (integer ≥ 0)', required: true }),
  }
  static override flags = {
    message: Flags.string({ description: 'why (recorded in the scaling history)' }),
    detach: Flags.boolean({ description: 'return once the change is submitted', default: false }),
    timeout: Flags.integer({ description: 'seconds to wait for the evaluation (and, for jobs without a deployment, for allocations to start)', default: 60, min: 1 }),
  }

  async run(): Promise<unknown> {
    const { args, flags } = await this.parse(JobScale)
    const count = Number(args.count)
    if (!/^\d+$/.test(args.count) || !Number.isSafeInteger(count)) fail(this, `count: must be an integer ≥ 0 (got "${args.count}")`)
    const api = this.api(flags.address)
    const res = await api.post<{ jobId: string; evalId: string; version: number }>(`/v1/job/${encodeURIComponent(args.job)}/scale`, { group: args.group, count, ...(flags.message ? { message: flags.message } : {}) })
    this.log(`==> Job "${res.jobId}" group "${args.group}" scaled to ${count} (version ${res.version}); evaluation ${res.evalId}`)
    if (flags.detach) return res
    await followSubmission(this, api, res, flags.timeout, this.jsonEnabled())
    return res
  }
}
