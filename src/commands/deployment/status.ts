import { Args, Flags } from '@oclif/core'
import type { Deployment } from '../../structs/index.ts'
import { ApiCommand } from '../base.ts'
import { ago, keyValues, shortId, table } from '../../cli/format.ts'
import { DEPLOYMENT_EXIT, deploymentTable, followDeployment, outputMode } from '../../cli/monitor.ts'

interface Detail extends Deployment {
  jobStable: boolean
  allocations: { id: string; name: string; nodeName: string; jobVersion: number; clientStatus: string; desiredStatus: string; healthy: boolean | null; canary: boolean; createTime: number }[]
}

export default class DeploymentStatus extends ApiCommand {
  static override description = `Show a deployment: its groups' progress and its allocations.

With --monitor, follow it until it ends (a table redrawn in place on a terminal,
timestamped lines otherwise). Exit codes with --monitor: 0 successful, 1 failed
or cancelled, 3 waiting on you (canaries to promote, paused).`

  static override examples = ['<%= config.bin %> deployment status 3f2a9c1b', '<%= config.bin %> deployment status 3f2a --monitor']
  static override enableJsonFlag = true
  static override args = { deployment: Args.string({ description: 'deployment id or unique prefix', required: true }) }
  static override flags = { monitor: Flags.boolean({ description: 'follow the deployment until it ends', default: false }) }

  async run(): Promise<unknown> {
    const { args, flags } = await this.parse(DeploymentStatus)
    const api = this.api(flags.address)
    const d = await api.get<Detail>(`/v1/deployment/${encodeURIComponent(args.deployment)}`)
    if (flags.monitor) {
      const { outcome, deployment } = await followDeployment(api, d.id, outputMode(this.jsonEnabled()))
      if (outcome !== 'successful') this.exit(DEPLOYMENT_EXIT[outcome])
      return deployment
    }
    this.log(keyValues([
      ['ID', d.id], ['Job', `${d.jobId} (version ${d.jobVersion}${d.jobStable ? ', stable' : ''})`],
      ['Status', d.status], ['Description', d.statusDescription || '-'], ['Created', ago(d.createTime)],
    ]))
    this.log('\nDeployed')
    this.log(deploymentTable(d))
    this.log('\nAllocations')
    if (d.allocations.length === 0) this.log('None placed')
    else this.log(table(['ID', 'Name', 'Node', 'Version', 'Desired', 'Status', 'Healthy', 'Canary', 'Created'], d.allocations.map((a) => [
      shortId(a.id), a.name, a.nodeName, a.jobVersion, a.desiredStatus, a.clientStatus, a.healthy === null ? '-' : String(a.healthy), a.canary ? 'yes' : '', ago(a.createTime),
    ])))
    return d
  }
}

