import { Args } from '@oclif/core'
import type { Node } from '../../structs/index.ts'
import { ApiCommand } from '../base.ts'
import { ago, keyValues, shortId, shortNodeId, table } from '../../cli/format.ts'

export default class NodeStatus extends ApiCommand {
  static override description = 'List client nodes, or show one node with its resources and allocations'
  static override examples = ['<%= config.bin %> node status', '<%= config.bin %> node status dev-1 --json']
  static override enableJsonFlag = true
  static override args = { node: Args.string({ description: 'node name, id, or a unique start or end of its id' }) }

  async run(): Promise<unknown> {
    const { args, flags } = await this.parse(NodeStatus)
    const api = this.api(flags.address)
    if (!args.node) {
      const nodes = await api.get<Node[]>('/v1/nodes')
      this.log(table(['ID', 'Name', 'Address', 'Drivers', 'Drain', 'Eligibility', 'Status'],
        nodes.map((n) => [shortNodeId(n.id), n.name, n.address, n.drivers.join(','), n.drain ? 'draining' : '-', n.eligible ? 'eligible' : 'ineligible', n.status])))
      return nodes
    }
    const n = await api.get<Node & { allocations: { id: string; name: string; clientStatus: string; desiredStatus: string; desiredTransition?: { migrate: boolean } }[] }>(`/v1/node/${encodeURIComponent(args.node)}`)
    this.log(keyValues([
      ['ID', n.id], ['Name', n.name], ['Address', n.address], ['HTTP', n.http], ['Status', n.status],
      ['Eligibility', n.eligible ? 'eligible' : 'ineligible'], ['Drain', drainText(n)], ['Drivers', n.drivers.join(', ')],
      ['CPU', `${n.resources.cpu} MHz`], ['Memory', `${n.resources.memoryMB} MB`],
    ]))
    this.log('\nAllocations')
    this.log(n.allocations.length ? table(['ID', 'Name', 'Desired', 'Status'], n.allocations.map((a) => [shortId(a.id), a.name, a.desiredTransition?.migrate && a.desiredStatus === 'run' ? 'migrate' : a.desiredStatus, a.clientStatus])) : 'None')
    return n
  }
}

function drainText(n: Node): string {
  if (n.drain) {
    const deadline = n.drain.deadlineAt === undefined ? 'no deadline' : `deadline ${new Date(n.drain.deadlineAt).toISOString()}`
    return `draining since ${ago(n.drain.startedAt)}, ${deadline}${n.drain.ignoreSystem ? ', system jobs stay' : ''}`
  }
  return n.lastDrain ? `none (last drain ${n.lastDrain.status} ${ago(n.lastDrain.endedAt)})` : 'none'
}
