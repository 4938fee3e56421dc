import { Args } from '@oclif/core'
import { ApiCommand } from '../base.ts'
import { shortId } from '../../cli/format.ts'

export default class DeploymentPause extends ApiCommand {
  static override description = 'Pause a deployment: nothing more is replaced until it is resumed'
  static override examples = ['<%= config.bin %> deployment pause 3f2a9c1b']
  static override enableJsonFlag = true
  static override args = { deployment: Args.string({ description: 'deployment id or unique prefix', required: true }) }

  async run(): Promise<unknown> {
    const { args, flags } = await this.parse(DeploymentPause)
    const res = await this.api(flags.address).post<{ deploymentId: string; jobId: string }>(`/v1/deployment/${encodeURIComponent(args.deployment)}/pause`, {})
    this.log(`==> Deployment "${shortId(res.deploymentId)}" of job "${res.jobId}" paused`)
    return res
  }
}
