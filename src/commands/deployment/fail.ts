import { Args } from '@oclif/core'
import { ApiCommand } from '../base.ts'
import { shortId } from '../../cli/format.ts'

export default class DeploymentFail extends ApiCommand {
  static override description = `Mark a running deployment failed: nothing more rolls; with auto_revert,
the job's latest stable version is registered again`

  static override examples = ['<%= config.bin %> deployment fail 3f2a9c1b']
  static override enableJsonFlag = true
  static override args = { deployment: Args.string({ description: 'deployment id or unique prefix', required: true }) }

  async run(): Promise<unknown> {
    const { args, flags } = await this.parse(DeploymentFail)
    const api = this.api(flags.address)
    const res = await api.post<{ deploymentId: string; jobId: string; revertedTo?: number }>(`/v1/deployment/${encodeURIComponent(args.deployment)}/fail`, {})
    this.log(`==> Deployment "${shortId(res.deploymentId)}" of job "${res.jobId}" marked failed${res.revertedTo !== undefined ? `; rolling back to job version ${res.revertedTo}` : ''}`)
    return res
  }
}
