import { ApiCommand } from '../base.ts'
import { table } from '../../cli/format.ts'
import type { ServiceSummary } from '../../structs/index.ts'

export default class ServiceList extends ApiCommand {
  static override description = 'List services of the catalog with their healthy and total instances'
  static override examples = ['<%= config.bin %> service list', '<%= config.bin %> service list --json']
  static override enableJsonFlag = true

  async run(): Promise<ServiceSummary[]> {
    const { flags } = await this.parse(ServiceList)
    const services = await this.api(flags.address).get<ServiceSummary[]>('/v1/services')
    this.log(services.length
      ? table(['Name', 'Healthy', 'Tags', 'Jobs'], services.map((s) => [s.name, `${s.healthy}/${s.total}`, s.tags.join(',') || '-', s.jobs.join(',') || '-']))
      : 'No services')
    return services
  }
}
