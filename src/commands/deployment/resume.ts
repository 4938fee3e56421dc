import { Args } from '@oclif/core'
import { ApiCommand } from '../base.ts'
import { shortId } from '../../cli/format.ts'

export default class DeploymentResume extends ApiCommand {
  static override description = 'Resume a deployment that was paused: the rollout continues'
  static override examples = ['<%= config.bin %> deployment resume 3f2a9c1b']
  static override enableJsonFlag = true
  static override args = { deployment: Args.string({ description: 'deployment id or unique prefix', required: true }) }

  async run(): Promise<unknown> {
    const { args, flags } = await this.parse(DeploymentResume)
    const res = await this.api(flags.address).post<{ deploymentId: string; jobId: string }>(`/v1/deployment/${encodeURIComponent(args.deployment)}/resume`, {})
    this.log(`==> Deployment "${shortId(res.deploymentId)}" of job "${res.jobId}" resumed`)
    return res
  }
}
