import { Args } from '@oclif/core'
import type { JobPlan } from '../../api/plan.ts'
import { ApiCommand } from '../base.ts'
import { readJobFile } from '../../cli/job-file.ts'
import { describeFailures } from '../../cli/monitor.ts'

/** The plan as text: the job line, the changes per group, where allocations would go, and what would not be placed. */
export function formatPlan(plan: JobPlan, file: string): string[] {
  const lines: string[] = []
  if (plan.type === 'added') lines.push(`+ Job: "${plan.jobId}" (new, version ${plan.version})`)
  else if (plan.type === 'edited') lines.push(`~ Job: "${plan.jobId}" (version ${plan.currentVersion} → ${plan.version})`)
  else lines.push(`  Job: "${plan.jobId}" (unchanged, version ${plan.version})`)
  for (const [group, d] of Object.entries(plan.diff)) {
    const changes = [
      d.create ? `+ create ${d.create}` : '',
      d.destroy ? `- destroy ${d.destroy}` : '',
      d.inPlaceUpdate ? `~ update ${d.inPlaceUpdate} (in-place)` : '',
      d.destructiveUpdate ? `~ update ${d.destructiveUpdate} (destructive)` : '',
      d.ignore ? `  ignore ${d.ignore}` : '',
    ].filter(Boolean)
    lines.push(`  Group "${group}"`, ...(changes.length ? changes : ['  no changes']).map((c) => `    ${c}`))
  }
  if (plan.placements.length) {
    lines.push('', 'Placements')
    for (const p of plan.placements) {
      const parts = Object.entries(p.scores).map(([k, v]) => `${k} ${v.toFixed(3)}`).join(', ')
      lines.push(`    ${p.name} → node ${p.nodeName} (score ${p.score.toFixed(3)}: ${parts})`)
    }
  }
  lines.push('', 'Scheduler dry-run:')
  const failures = describeFailures(plan.placementFailures)
  if (failures.length === 0) lines.push('- All allocations would be placed.')
  else lines.push('- WARNING: Failed to place all allocations.', ...failures)
  lines.push('', `Job Modify Index: ${plan.jobModifyIndex}`, `To submit the job: shoal job run ${file}`)
  return lines
}

export default class JobPlanCommand extends ApiCommand {
  static override description = `Show what submitting a job file would do, without changing anything.

The agent runs the scheduler on the current cluster state with the job as it
would be registered: the allocations each group would create, destroy or
replace, the node each new allocation would go to and why, and for what could
not be placed the reasons per node.

Exit codes: 0 every allocation would be placed, 1 error,
2 some allocations could not be placed (the reasons are printed).`

  static override examples = ['<%= config.bin %> job plan examples/web.json', '<%= config.bin %> job plan web.json --json']
  static override enableJsonFlag = true
  static override args = { file: Args.string({ description: 'job file (JSON)', required: true }) }

  async run(): Promise<unknown> {
    const { args, flags } = await this.parse(JobPlanCommand)
    const body = await readJobFile(this, args.file)
    const api = this.api(flags.address)
    const plan = await api.post<JobPlan>('/v1/job/plan', body)
    const unplaced = Object.values(plan.placementFailures).reduce((n, f) => n + f.unplaced, 0)
    if (this.jsonEnabled()) {
      // oclif prints the returned plan; the exit code still tells whether everything places.
      if (unplaced > 0) process.exitCode = 2
      return plan
    }
    for (const line of formatPlan(plan, args.file)) this.log(line)
    if (unplaced > 0) this.exit(2)
    return plan
  }
}
