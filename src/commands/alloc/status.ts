import { Args } from '@oclif/core'
import type { Allocation } from '../../structs/index.ts'
import { ApiCommand } from '../base.ts'
import { ago, keyValues, table } from '../format.ts'

export default class AllocStatus extends ApiCommand {
  static override description = 'Show an allocation: where it runs, its ports, its tasks and their recent events'
  static override examples = ['<%= config.bin %> alloc status 3f2a9c1b']
  static override enableJsonFlag = true
  static override args = { alloc: Args.string({ description: 'allocation id or unique prefix', required: true }) }

  async run(): Promise<unknown> {
    const { args, flags } = await this.parse(AllocStatus)
    const a = await this.api(flags.address).get<Allocation & { nodeName: string }>(`/v1/allocation/${encodeURIComponent(args.alloc)}`)
    this.log(keyValues([
      ['ID', a.id], ['Name', a.name], ['Node', `${a.nodeName} (${a.nodeId})`], ['Job', `${a.jobId} (version ${a.jobVersion})`],
      ['Desired Status', a.desiredStatus + (a.desiredDescription ? ` (${a.desiredDescription})` : '')],
      ['Client Status', a.clientStatus + (a.clientDescription ? ` (${a.clientDescription})` : '')],
      ['Created', ago(a.createTime)], ['Modified', ago(a.modifyTime)],
      ['Resources', `${a.resources.cpu} MHz, ${a.resources.memoryMB} MB`],
      ['Ports', a.resources.ports.map((p) => `${p.label}: ${p.hostIp}:${p.value} → ${p.to}`).join(', ') || '-'],
    ]))
    for (const [name, ts] of Object.entries(a.taskStates)) {
      const health = ts.health ? `, health: ${ts.health}` : ''
      this.log(`\nTask "${name}" is "${ts.state}"${ts.failed ? ' (failed)' : ''}${health}, restarts: ${ts.restarts}`)
      this.log(table(['Time', 'Type', 'Description'], ts.events.map((e) => [new Date(e.time).toISOString(), e.type, e.message])))
    }
    return a
  }
}
