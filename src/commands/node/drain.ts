import { Args, Flags } from '@oclif/core'
import type { ApiClient } from '../../api/client.ts'
import { formatDuration, tryParseDuration } from '../../jobspec/index.ts'
import type { DrainStrategy, LastDrain } from '../../structs/index.ts'
import { fail, writeError } from '../../cli/output.ts'
import { ApiCommand } from '../base.ts'
import { shortId } from '../../cli/format.ts'

interface NodeView {
  id: string
  name: string
  eligible: boolean
  drain?: DrainStrategy
  lastDrain?: LastDrain
  allocations: { id: string; name: string; jobId: string; desiredStatus: string; desiredDescription: string; clientStatus: string; desiredTransition?: { migrate: boolean; force?: boolean } }[]
}

const POLL_MS = 500

export default class NodeDrain extends ApiCommand {
  static override description = `Move every allocation off a node, or end a drain.

--enable makes the node ineligible and migrates its allocations elsewhere,
honouring each group's migrate block: at most max_parallel of a group move at
once, and each replacement is healthy before the allocation it replaces stops.
Batch allocations are left to finish; system allocations stop last (or stay
with --ignore-system). At the deadline whatever is left is stopped (its
replacement is still placed). When nothing is left the drain is complete and
the node stays ineligible ("node eligibility --enable" to use it again).
Unless --detach, the command follows the drain until it completes.

--disable ends a drain: migrations already started finish, no new ones start,
and the node becomes eligible again (unless --keep-ineligible).`

  static override examples = [
    '<%= config.bin %> node drain dev-1 --enable',
    '<%= config.bin %> node drain dev-1 --enable --deadline 30m --ignore-system --detach',
    '<%= config.bin %> node drain dev-1 --disable',
  ]

  static override enableJsonFlag = true
  static override args = { node: Args.string({ description: 'node name, id, or a unique start or end of its id', required: true }) }
  static override flags = {
    enable: Flags.boolean({ description: 'start draining the node', default: false }),
    disable: Flags.boolean({ description: 'end the drain of the node', default: false }),
    deadline: Flags.string({ description: 'after this long, stop whatever is left (e.g. 1h, 30m)', default: '1h' }),
    'no-deadline': Flags.boolean({ description: 'migrate at the migrate blocks\' pace however long it takes', default: false }),
    force: Flags.boolean({ description: 'no migration pacing: stop everything now (deadline 0)', default: false }),
    'ignore-system': Flags.boolean({ description: 'leave the allocations of system jobs on the node', default: false }),
    'keep-ineligible': Flags.boolean({ description: 'with --disable: the node stays ineligible', default: false }),
    detach: Flags.boolean({ description: 'return once the drain is set, without following it', default: false }),
  }

  async run(): Promise<unknown> {
    const { args, flags, raw } = await this.parse(NodeDrain)
    if (flags.enable === flags.disable) fail(this, 'give exactly one of --enable or --disable')
    const given = (name: string) => raw.some((r) => r.type === 'flag' && r.flag === name)
    const api = this.api(flags.address)
    const path = `/v1/node/${encodeURIComponent(args.node)}/drain`
    if (flags.disable) {
      for (const f of ['deadline', 'no-deadline', 'force', 'ignore-system']) if (given(f)) fail(this, `--${f}: only with --enable`)
      const res = await api.post<{ name: string; eligible: boolean; wasDraining: boolean }>(path, { enable: false, markEligible: !flags['keep-ineligible'] })
      const what = res.wasDraining ? 'drain disabled' : 'was not draining'
      this.log(`Node "${res.name}": ${what}; ${res.eligible ? 'eligible' : 'ineligible'} for scheduling`)
      return res
    }
    if (given('keep-ineligible')) fail(this, '--keep-ineligible: only with --disable')
    if ([given('deadline'), flags['no-deadline'], flags.force].filter(Boolean).length > 1) fail(this, 'give at most one of --deadline, --no-deadline and --force')
    let deadline: string | null = flags.deadline
    if (flags.force) deadline = '0s'
    else if (flags['no-deadline']) deadline = null
    else if (tryParseDuration(flags.deadline) === undefined) fail(this, `--deadline: must be a duration like "1h" or "30m" (got "${flags.deadline}")`)
    const res = await api.post<{ nodeId: string; name: string; drain: DrainStrategy }>(path, { enable: true, deadline, ignoreSystem: flags['ignore-system'] })
    const until = res.drain.deadlineAt === undefined ? 'no deadline' : `deadline ${new Date(res.drain.deadlineAt).toISOString()} (${formatDuration(res.drain.deadlineAt - res.drain.startedAt)})`
    this.log(`${stamp()} Node "${res.name}" (${res.nodeId}) draining: ${until}${res.drain.ignoreSystem ? ', system jobs stay' : ''}`)
    if (flags.detach) return res
    const ok = await this.#follow(api, res.nodeId, res.drain.startedAt)
    if (!ok) this.exit(1)
    return res
  }

  /** Plain lines for each change of the node's allocations until the drain ends; true if it completed. */
  async #follow(api: ApiClient, nodeId: string, startedAt: number): Promise<boolean> {
    const seen = new Map<string, string>()
    for (;;) {
      const node = await api.get<NodeView>(`/v1/node/${encodeURIComponent(nodeId)}`)
      for (const a of node.allocations) {
        const moving = a.desiredTransition?.migrate && a.desiredStatus === 'run'
        const state = a.desiredStatus === 'stop'
          ? `stopped (${a.desiredDescription || 'stop'}), ${a.clientStatus}`
          : moving ? (a.desiredTransition!.force ? 'stopping at the deadline' : 'migrating') : `${a.clientStatus}`
        const before = seen.get(a.id)
        if (before === state) continue
        seen.set(a.id, state)
        if (before === undefined && a.desiredStatus === 'stop' && a.clientStatus !== 'running') continue // long gone
        this.log(`${stamp()} Allocation ${shortId(a.id)} ${a.name}: ${state}`)
      }
      if (node.drain?.startedAt !== startedAt) {
        const last = node.lastDrain
        if (last?.startedAt === startedAt && last.status === 'complete') {
          this.log(`${stamp()} Node "${node.name}" drain complete; it stays ineligible for scheduling`)
          return true
        }
        writeError(`the drain of node "${node.name}" ${last?.startedAt === startedAt ? 'was disabled' : 'was replaced by another drain'} before it completed`)
        return false
      }
      await new Promise((r) => setTimeout(r, POLL_MS))
    }
  }
}

function stamp(): string {
  return new Date().toISOString()
}
