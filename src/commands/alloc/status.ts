import { Args, Flags } from '@oclif/core'
import type { Allocation } from '../../structs/index.ts'
import { ApiCommand } from '../base.ts'
import { ago, keyValues, table } from '../../cli/format.ts'

/** What GET /v1/client/allocation/:id/stats answers per task. */
export interface TaskUsage {
  state: string
  cpu?: { percent: number; mhz: number }
  memory?: { rssBytes: number; usageBytes?: number }
  reserved: { cpu: number; memoryMB: number; memoryMaxMB?: number }
  error?: string
}

function mib(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(1)} MiB`
}

/** "CPU 1.2% (24 MHz) of 100 MHz, memory 1.5 MiB of 32 MiB" */
export function formatUsage(u: TaskUsage): string {
  if (u.error) return `unavailable (${u.error})`
  if (!u.cpu || !u.memory) return 'not running'
  const max = u.reserved.memoryMaxMB !== undefined ? `, up to ${u.reserved.memoryMaxMB} MiB` : ''
  return `CPU ${u.cpu.percent}% (${Math.round(u.cpu.mhz)} MHz) of ${u.reserved.cpu} MHz, memory ${mib(u.memory.rssBytes)} of ${u.reserved.memoryMB} MiB${max}`
}

export default class AllocStatus extends ApiCommand {
  static override description = 'Show an allocation: where it runs, its ports, its tasks with their resource usage and recent events'
  static override examples = ['<%= config.bin %> alloc status 3f2a9c1b', '<%= config.bin %> alloc status 3f2a9c1b --no-stats']
  static override enableJsonFlag = true
  static override args = { alloc: Args.string({ description: 'allocation id or unique prefix', required: true }) }
  static override flags = {
    stats: Flags.boolean({ description: 'sample the resource usage of running tasks (about a second)', default: true, allowNo: true }),
  }

  async run(): Promise<unknown> {
    const { args, flags } = await this.parse(AllocStatus)
    const api = this.api(flags.address)
    const a = await api.get<Allocation & { nodeName: string }>(`/v1/allocation/${encodeURIComponent(args.alloc)}`)
    let usage: Record<string, TaskUsage> | undefined
    if (flags.stats && Object.values(a.taskStates).some((s) => s.state === 'running')) {
      usage = await api.get<{ tasks: Record<string, TaskUsage> }>(`/v1/client/allocation/${a.id}/stats`).then((r) => r.tasks, () => undefined)
    }
    this.log(keyValues([
      ['ID', a.id], ['Name', a.name], ['Node', `${a.nodeName} (${a.nodeId})`], ['Job', `${a.jobId} (version ${a.jobVersion})`],
      ['Desired Status', a.desiredStatus + (a.desiredDescription ? ` (${a.desiredDescription})` : '')],
      ['Client Status', a.clientStatus + (a.clientDescription ? ` (${a.clientDescription})` : '')],
      ['Created', ago(a.createTime)], ['Modified', ago(a.modifyTime)],
      ['Resources', `${a.resources.cpu} MHz, ${a.resources.memoryMB} MB`],
      ['Ports', a.resources.ports.map((p) => `${p.label}: ${p.hostIp}:${p.value} → ${p.to}`).join(', ') || '-'],
      ...(a.serviceHealth ? [['Service Checks', Object.entries(a.serviceHealth).map(([n, h]) => `${n}: ${h.status}${h.output ? ` (${h.output})` : ''}`).join('; ')] as [string, string]] : []),
    ]))
    for (const [name, ts] of Object.entries(a.taskStates)) {
      const health = ts.health ? `, health: ${ts.health}` : ''
      this.log(`\nTask "${name}" is "${ts.state}"${ts.failed ? ' (failed)' : ''}${health}, restarts: ${ts.restarts}`)
      const u = usage?.[name]
      if (u && ts.state === 'running') this.log(`Usage: ${formatUsage(u)}`)
      this.log(table(['Time', 'Type', 'Description'], ts.events.map((e) => [new Date(e.time).toISOString(), e.type, e.message])))
    }
    return usage ? { ...a, usage } : a
  }
}
