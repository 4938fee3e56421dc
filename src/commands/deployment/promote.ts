import { Args, Flags } from '@oclif/core'
import { ApiCommand } from '../base.ts'
import { shortId } from '../../cli/format.ts'
import { DEPLOYMENT_EXIT, followDeployment, outputMode } from '../../cli/monitor.ts'

export default class DeploymentPromote extends ApiCommand {
  static override description = `Promote a deployment's canaries: the rest of each group rolls to the new version.

Follows the deployment until it ends unless --detach (exit codes as
"deployment status --monitor").`

  static override examples = ['<%= config.bin %> deployment promote 3f2a9c1b', '<%= config.bin %> deployment promote 3f2a --group web --detach']
  static override enableJsonFlag = true
  static override args = { deployment: Args.string({ description: 'deployment id or unique prefix', required: true }) }
  static override flags = {
    group: Flags.string({ description: 'promote only this group (repeatable); default: every group with canaries', multiple: true }),
    detach: Flags.boolean({ description: 'return once the promotion is written', default: false }),
  }

  async run(): Promise<unknown> {
    const { args, flags } = await this.parse(DeploymentPromote)
    const api = this.api(flags.address)
    const res = await api.post<{ deploymentId: string; jobId: string; evalId: string }>(
      `/v1/deployment/${encodeURIComponent(args.deployment)}/promote`, flags.group ? { groups: flags.group } : {})
    this.log(`==> Deployment "${shortId(res.deploymentId)}" of job "${res.jobId}" promoted; evaluation ${res.evalId}`)
    if (flags.detach) return res
    const { outcome, deployment } = await followDeployment(api, res.deploymentId, outputMode(this.jsonEnabled()))
    if (outcome !== 'successful') this.exit(DEPLOYMENT_EXIT[outcome])
    return { ...res, deployment }
  }
}
