import { Args } from '@oclif/core'
import type { Deployment, PlacementFailure, ScalingEvent, ScalingPolicy } from '../../structs/index.ts'
import { formatDuration } from '../../jobspec/index.ts'
import { ApiCommand } from '../base.ts'
import { ago, keyValues, shortId, table } from '../../cli/format.ts'
import { deploymentTable, describeFailures } from '../../cli/monitor.ts'

interface JobItem {
  id: string; type: string; priority: number; version: number; status: string; stop: boolean; submitTime: number
  summary: Record<string, Record<string, number>>
}
interface JobDetail extends JobItem {
  allocations: { id: string; nodeName: string; group: string; jobVersion: number; desiredStatus: string; clientStatus: string; createTime: number; modifyTime: number }[]
  latestEval: { id: string; status: string; statusDescription: string } | null
  placementFailures: Record<string, PlacementFailure>
  scaling?: Record<string, { count: number; policy: ScalingPolicy | null; events: ScalingEvent[] }>
  latestDeployment?: Deployment | null
}

/** Scaling decisions shown per group by `job status`. */
const EVENTS_SHOWN = 5

function policyText(p: ScalingPolicy): string {
  const target = p.policy.metric === 'cpu_percent' ? `cpu ${p.policy.target}%` : `${p.policy.target} req/s per instance`
  const steps = `in ≤${p.scaleInStep}${p.scaleOutStep ? `, out ≤${p.scaleOutStep}` : ''}`
  return `${target}, every ${formatDuration(p.evaluationIntervalMs)}, cooldown ${formatDuration(p.cooldownMs)}, steps ${steps}`
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
    const scaling = Object.entries(job.scaling ?? {})
    if (scaling.length) {
      this.log('\nScaling')
      this.log(table(['Group', 'Count', 'Min', 'Max', 'Autoscaling', 'Policy'], scaling.map(([g, s]) => [
        g, s.count, s.policy?.min ?? '-', s.policy?.max ?? '-', s.policy ? (s.policy.enabled ? 'enabled' : 'paused') : '-', s.policy ? policyText(s.policy) : '-',
      ])))
      const events = scaling.flatMap(([g, s]) => s.events.slice(-EVENTS_SHOWN).map((e) => ({ g, e }))).sort((a, b) => a.e.time - b.e.time)
      if (events.length) {
        this.log('\nScaling Events')
        this.log(table(['Time', 'Group', 'Count', 'Source', 'Decision'], events.map(({ g, e }) => [
          ago(e.time), g, e.from === e.to ? `${e.to}` : `${e.from} → ${e.to}`, e.source, e.message,
        ])))
      }
    }
    if (job.latestDeployment) {
      const d = job.latestDeployment
      this.log('\nLatest Deployment')
      this.log(keyValues([['ID', shortId(d.id)], ['Version', d.jobVersion], ['Status', d.status], ['Description', d.statusDescription || '-']]))
      this.log(deploymentTable(d))
    }
    this.log('\nAllocations')
    if (job.allocations.length === 0) this.log('No allocations placed')
    else this.log(table(['ID', 'Node', 'Group', 'Version', 'Desired', 'Status', 'Created', 'Modified'],
      job.allocations.map((a) => [shortId(a.id), a.nodeName, a.group, a.jobVersion, a.desiredStatus, a.clientStatus, ago(a.createTime), ago(a.modifyTime)])))
    return job
  }
}
