import { Args } from '@oclif/core'
import type { PlacementFailure } from '../../structs/index.ts'
import { ApiCommand } from '../base.ts'
import { ago, keyValues, shortId, table } from '../format.ts'
import { describeFailures } from '../monitor.ts'

interface JobItem {
  id: string; type: string; priority: number; version: number; status: string; stop: boolean; submitTime: number
  summary: Record<string, Record<string, number>>
}
interface JobDetail extends JobItem {
  allocations: { id: string; nodeName: string; group: string; jobVersion: number; desiredStatus: string; clientStatus: string; createTime: number; modifyTime: number }[]
  latestEval: { id: string; status: string; statusDescription: string } | null
  placementFailures: Record<string, PlacementFailure>
}

export default class JobStatus extends ApiCommand {
  static override description = 'List jobs, or show one job with its allocations and any placement failures'
  static override examples = ['<%= config.bin %> job status', '<%= config.bin %> job status web --json']
  static override enableJsonFlag = true
  static override args = { job: Args.string({ description: 'job id (omit to list all jobs)' }) }

  async run(): Promise<unknown> {
    const { args, flags } = await this.parse(JobStatus)
    const api = this.api(flags.address)
    if (!args.job) {
      const jobs = await api.get<JobItem[]>('/v1/jobs')
      if (jobs.length === 0) this.log('No running jobs')
      else this.log(table(['ID', 'Type', 'Priority', 'Version', 'Status', 'Submitted'], jobs.map((j) => [j.id, j.type, j.priority, j.version, j.status, ago(j.submitTime)])))
      return jobs
    }
    const job = await api.get<JobDetail>(`/v1/job/${encodeURIComponent(args.job)}`)
    this.log(keyValues([['ID', job.id], ['Type', job.type], ['Priority', job.priority], ['Version', job.version], ['Status', job.stop ? `${job.status} (stopped)` : job.status], ['Submitted', ago(job.submitTime)]]))
    this.log('\nSummary')
    this.log(table(['Group', 'Pending', 'Running', 'Complete', 'Failed', 'Lost'],
      Object.entries(job.summary).map(([g, s]) => [g, s.pending ?? 0, s.running ?? 0, s.complete ?? 0, s.failed ?? 0, s.lost ?? 0])))
    const failures = describeFailures(job.placementFailures)
    if (failures.length) {
      this.log('\nPlacement Failure')
      for (const l of failures) this.log(l)
    }
    this.log('\nAllocations')
    if (job.allocations.length === 0) this.log('No allocations placed')
    else this.log(table(['ID', 'Node', 'Group', 'Version', 'Desired', 'Status', 'Created', 'Modified'],
      job.allocations.map((a) => [shortId(a.id), a.nodeName, a.group, a.jobVersion, a.desiredStatus, a.clientStatus, ago(a.createTime), ago(a.modifyTime)])))
    return job
  }
}
