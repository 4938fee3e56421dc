import { Args, Flags } from '@oclif/core'
import { fail } from '../../cli/output.ts'
import { ApiCommand } from '../base.ts'
import { table } from '../../cli/format.ts'
import type { ServiceInstance, ServiceSummary } from '../../structs/index.ts'

export default class ServiceInfo extends ApiCommand {
  static override description = 'Show the instances of a service: where they run and whether they pass their checks'
  static override examples = ['<%= config.bin %> service info web', '<%= config.bin %> service info web --passing --json']
  static override enableJsonFlag = true
  static override args = { name: Args.string({ description: 'service name', required: true }) }
  static override flags = {
    passing: Flags.boolean({ description: 'only instances whose checks pass', default: false }),
  }

  async run(): Promise<{ service: string; instances: ServiceInstance[] }> {
    const { args, flags } = await this.parse(ServiceInfo)
    const api = this.api(flags.address)
    const instances = await api.get<ServiceInstance[]>(`/v1/service/${encodeURIComponent(args.name)}${flags.passing ? '?passing' : ''}`)
    if (instances.length === 0) {
      const known = await api.get<ServiceSummary[]>('/v1/services')
      if (!known.some((s) => s.name === args.name)) {
        const names = known.map((s) => s.name)
        fail(this, `service "${args.name}" not found${names.length ? ` (services: ${names.join(', ')})` : ' (no services are registered)'}`, 4)
      }
    }
    this.log(instances.length
      ? table(['Alloc', 'Node', 'Address', 'Status', 'Tags', 'Job', 'Group'],
        instances.map((i) => [i.allocId.slice(0, 8), i.nodeName, `${i.address}:${i.port}`, i.status, i.tags.join(',') || '-', i.jobId, i.task ? `${i.group}/${i.task}` : i.group]))
      : `No${flags.passing ? ' passing' : ''} instances of service "${args.name}"`)
    return { service: args.name, instances }
  }
}
