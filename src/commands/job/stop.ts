import { Args, Flags } from '@oclif/core'
import { fail } from '../../cli/output.ts'
import { ApiCommand } from '../base.ts'

interface AllocStub { id: string; desiredStatus: string; clientStatus: string }

export default class JobStop extends ApiCommand {
  static override description = 'Stop a job: its allocations are stopped and their containers removed'
  static override examples = ['<%= config.bin %> job stop web', '<%= config.bin %> job stop web --purge']
  static override enableJsonFlag = true
  static override args = { job: Args.string({ description: 'job id', required: true }) }
  static override flags = {
    purge: Flags.boolean({ description: 'also remove the job and its versions from the state', default: false }),
    detach: Flags.boolean({ description: 'return without waiting for the allocations to stop', default: false }),
    timeout: Flags.integer({ description: 'seconds to wait for allocations to stop', default: 60, min: 1 }),
  }

  async run(): Promise<unknown> {
    const { args, flags } = await this.parse(JobStop)
    const api = this.api(flags.address)
    const res = await api.delete<{ jobId: string; evalId: string }>(`/v1/job/${encodeURIComponent(args.job)}${flags.purge ? '?purge=true' : ''}`)
    this.log(`==> Job "${res.jobId}" ${flags.purge ? 'purged' : 'stopped'}; evaluation ${res.evalId}`)
    if (flags.detach) return res
    const deadline = Date.now() + flags.timeout * 1000
    let remaining = 0
    do {
      const allocs = await api.get<AllocStub[]>(`/v1/allocations`)
      const live = allocs.filter((a) => (a as AllocStub & { jobId: string }).jobId === res.jobId && ['pending', 'running'].includes(a.clientStatus))
      remaining = live.length
      if (remaining === 0) break
      await new Promise((r) => setTimeout(r, 250))
    } while (Date.now() < deadline)
    if (remaining > 0) fail(this, `${remaining} allocation(s) still running after ${flags.timeout}s`, 1)
    this.log('==> All allocations stopped')
    return res
  }
}
