import { ApiCommand } from '../base.ts'

export default class SystemGc extends ApiCommand {
  static override description = `Remove finished evaluations and allocations, and stopped jobs, from the state now.

The leader also does it every 5 minutes for what finished more than an hour
ago (shoal agent --gc-interval, --gc-threshold). Allocations that should still run (a failed one holding its slot), and
pending or blocked evaluations, are kept.`

  static override examples = ['<%= config.bin %> system gc']
  static override enableJsonFlag = true

  async run(): Promise<unknown> {
    const { flags } = await this.parse(SystemGc)
    const r = await this.api(flags.address).put<{ evals: number; allocs: number; jobs: number; index: number | null }>('/v1/system/gc', {})
    this.log(`==> Removed ${r.evals} evaluation(s), ${r.allocs} allocation(s), ${r.jobs} job(s)`)
    return r
  }
}
