import { ApiCommand } from './base.ts'
import { ago, table } from '../cli/format.ts'

interface MemberView { name: string; id: string; address: string; http: string; role: string; status: string; lastSeen: number | null }

export default class Members extends ApiCommand {
  static override description = 'List the cluster members with their Raft role'
  static override examples = ['<%= config.bin %> members', '<%= config.bin %> members --json']
  static override enableJsonFlag = true

  async run(): Promise<MemberView[]> {
    const { flags } = await this.parse(Members)
    const members = await this.api(flags.address).get<MemberView[]>('/v1/members')
    this.log(table(['Name', 'ID', 'Address', 'HTTP', 'Status', 'Role', 'Last Seen'],
      members.map((m) => [m.name, m.id, m.address, m.http, m.status, m.role, m.lastSeen === null ? 'never' : ago(m.lastSeen)])))
    return members
  }
}
