import { Args } from '@oclif/core'
import type { Job } from '../../structs/index.ts'
import { ApiCommand } from '../base.ts'
import { ago, table } from '../../cli/format.ts'

/** One line on what changed from one version to the next. */
export function versionChanges(prev: Job | undefined, cur: Job): string {
  if (!prev) return 'first version'
  const out: string[] = []
  const before = new Map(prev.groups.map((g) => [g.name, g]))
  for (const g of cur.groups) {
    const p = before.get(g.name)
    if (!p) out.push(`+group ${g.name}`)
    else {
      if (p.count !== g.count) out.push(`${g.name} count ${p.count}→${g.count}`)
      if (JSON.stringify(p.tasks) !== JSON.stringify(g.tasks)) out.push(`${g.name} tasks changed`)
      const rest = (x: typeof g) => JSON.stringify({ ...x, count: 0, tasks: [] })
      if (rest(p) !== rest(g)) out.push(`${g.name} settings changed`)
    }
    before.delete(g.name)
  }
  for (const name of before.keys()) out.push(`-group ${name}`)
  if (prev.type !== cur.type || prev.priority !== cur.priority) out.push('job settings changed')
  return out.join(', ') || 'no change (re-run after stop)'
}

export default class JobHistory extends ApiCommand {
  static override description = 'List the versions of a job with what changed in each, and which are stable (their deployment succeeded)'
  static override examples = ['<%= config.bin %> job history web', '<%= config.bin %> job history web --json']
  static override enableJsonFlag = true
  static override args = { job: Args.string({ description: 'job id', required: true }) }

  async run(): Promise<Job[]> {
    const { args, flags } = await this.parse(JobHistory)
    const versions = await this.api(flags.address).get<Job[]>(`/v1/job/${encodeURIComponent(args.job)}/versions`)
    this.log(table(['Version', 'Stable', 'Submitted', 'Changes'], [...versions].reverse().map((v) => [
      v.version, v.stable === true ? 'true' : 'false', ago(v.submitTime), versionChanges(versions.find((p) => p.version === v.version - 1), v),
    ])))
    return versions
  }
}
