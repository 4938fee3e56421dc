import { Flags } from '@oclif/core'
import type { Deployment } from '../../structs/index.ts'
import { ApiCommand } from '../base.ts'
import { ago, shortId, table } from '../../cli/format.ts'

export default class DeploymentList extends ApiCommand {
  static override description = 'List deployments, newest first'
  static override examples = ['<%= config.bin %> deployment list', '<%= config.bin %> deployment list --job web --json']
  static override enableJsonFlag = true
  static override flags = { job: Flags.string({ description: 'only the deployments of this job' }) }

  async run(): Promise<unknown> {
    const { flags } = await this.parse(DeploymentList)
    const api = this.api(flags.address)
    const list = await api.get<Deployment[]>(`/v1/deployments${flags.job ? `?job=${encodeURIComponent(flags.job)}` : ''}`)
    if (list.length === 0) this.log('No deployments')
    else this.log(table(['ID', 'Job', 'Version', 'Status', 'Description', 'Created'],
      list.map((d) => [shortId(d.id), d.jobId, d.jobVersion, d.status, d.statusDescription, ago(d.createTime)])))
    return list
  }
}
