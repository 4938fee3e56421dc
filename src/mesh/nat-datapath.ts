// The kernel data path's IO: iptables-restore transactions built by
// nat-rules.ts, run one at a time. The mesh says what it wants (`sync`);
// changes that arrive while a transaction runs are folded into the next one.
import { execFile, spawn } from 'node:child_process'
import { promisify } from 'node:util'
import { dispatchCounters, natChains, natCleanup, natSetup, natUpdate, stalePrefixes, unfitBind, type NatChains, type NatPort, type NatState } from './nat-rules.ts'

const run = promisify(execFile)
/** A failed transaction is tried again (from a clean slate) after this long. */
const RETRY_MS = 2_000
/** iptables-legacy takes a host-wide lock; wait for it rather than fail. */
const WAIT = ['-w', '5']

export interface NatLogger {
  info(msg: string): void
  warn(msg: string): void
}

/** Runs iptables-restore --noflush on `text` (one transaction); `test`: only checks that it would apply. */
async function restore(text: string, test = false): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const p = spawn('iptables-restore', [...WAIT, '--noflush', ...(test ? ['--test'] : [])], { stdio: ['pipe', 'ignore', 'pipe'] })
    let stderr = ''
    p.stderr.on('data', (d: Buffer) => (stderr += d))
    p.once('error', reject)
    p.once('close', (code) => {
      if (code === 0) resolve()
      else reject(new Error(`iptables-restore exited ${code}: ${stderr.trim().split('\n')[0] ?? ''}`))
    })
    p.stdin.on('error', () => undefined)
    p.stdin.end(text)
  })
}

async function save(table: 'nat' | 'filter'): Promise<string> {
  return (await run('iptables-save', ['-t', table], { maxBuffer: 16 << 20 })).stdout
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** Removes the chains of the given prefixes and the jumps into them (nothing else). */
export async function removeChains(prefixes: ReadonlySet<string>): Promise<boolean> {
  const text = natCleanup({ nat: await save('nat'), filter: await save('filter') }, prefixes)
  if (text) await restore(text)
  return text !== null
}

export class NatDatapath {
  readonly chains: NatChains
  readonly #bind: string
  readonly #log: NatLogger
  /** What the kernel holds (after the last successful transaction). */
  #applied: NatState = new Map()
  #want: NatState = new Map()
  #running: Promise<void> | null = null
  #retry: NodeJS.Timeout | undefined
  /** Whether the chains and the jumps into them exist (made with the first port: an agent that publishes nothing touches nothing). */
  #setUp = false
  /** Set after a failed transaction: the next one starts from empty chains. */
  #dirty = false
  #error: string | null = null
  /** Connections counted by dispatch rules since deleted (per service), so counters never go back. */
  readonly #base = new Map<string, number>()
  #lastCounts = new Map<number, number>()
  #closed = false

  private constructor(chains: NatChains, bind: string, log: NatLogger) {
    this.chains = chains
    this.#bind = bind
    this.#log = log
  }

  /**
   * Removes the chains a previous run of this agent left (even after kill -9)
   * and those of agents that are gone, and checks that its own would apply
   * (they are made with the first published port). Throws with the reason
   * when the kernel data path cannot be used.
   */
  static async open(o: { owner: string; bind: string; log: NatLogger }): Promise<NatDatapath> {
    const unfit = unfitBind(o.bind)
    if (unfit) throw new Error(unfit)
    if (process.getuid?.() !== 0) throw new Error('the agent is not running as root (iptables needs it)')
    const chains = natChains(o.owner, process.pid)
    try {
      const saved = { nat: await save('nat'), filter: await save('filter') }
      const stale = stalePrefixes(saved, chains.prefix, alive)
      const cleanup = natCleanup(saved, stale)
      if (cleanup) {
        await restore(cleanup)
        o.log.info(`mesh: removed stale kernel rules (${[...stale].filter((p) => cleanup.includes(p)).join(', ')})`)
      }
      await restore(natSetup(chains, o.bind), true)
    } catch (err) {
      const e = err as NodeJS.ErrnoException
      if (e.code === 'ENOENT') throw new Error(`${e.path ?? 'iptables'} not found`)
      throw new Error(`iptables failed: ${e.message}`)
    }
    return new NatDatapath(chains, o.bind, o.log)
  }

  /** The port as the kernel serves it now, if it has a dispatch rule. */
  applied(port: number): NatPort | undefined {
    return this.#applied.get(port)
  }

  /** The last failed transaction's error, until one succeeds. */
  get error(): string | null {
    return this.#error
  }

  /** Brings the kernel to `want` (soon; one transaction at a time). */
  sync(want: NatState): void {
    if (this.#closed) return
    this.#want = want
    this.#running ??= this.#loop().catch((err: Error) => this.#log.warn(`mesh: kernel rules: ${err.message}`)).finally(() => {
      this.#running = null
      // A sync that came while the loop was returning.
      if (!this.#closed && !this.#dirty && this.#want !== this.#applied) this.sync(this.#want)
    })
  }

  async #loop(): Promise<void> {
    while (!this.#closed) {
      const want = this.#want
      let text: string | null
      if (this.#dirty) {
        // After a failure the kernel's state is unknown: rebuild the chains from nothing.
        const saved = { nat: await save('nat').catch(() => ''), filter: await save('filter').catch(() => '') }
        text = `${natCleanup(saved, new Set([this.chains.prefix])) ?? ''}${natSetup(this.chains, this.#bind)}${natUpdate(this.chains, this.#bind, new Map(), want) ?? ''}`
      } else {
        text = natUpdate(this.chains, this.#bind, this.#applied, want)
        if (text === null) {
          this.#applied = want
          return
        }
        if (!this.#setUp) text = natSetup(this.chains, this.#bind) + text
        const removed = [...this.#applied.values()].filter((p) => !want.has(p.port))
        if (removed.length > 0) await this.#keepCounts(removed)
      }
      try {
        await restore(text)
      } catch (err) {
        const message = (err as Error).message
        if (message !== this.#error) this.#log.warn(`mesh: kernel rules not applied (${message}); published ports use the user-space proxy until a retry succeeds`)
        this.#error = message
        for (const p of this.#applied.values()) this.#base.set(p.service, (this.#base.get(p.service) ?? 0) + (this.#lastCounts.get(p.port) ?? 0))
        this.#dirty = true
        this.#applied = new Map()
        clearTimeout(this.#retry)
        this.#retry = setTimeout(() => this.sync(this.#want), RETRY_MS)
        return
      }
      if (this.#error) this.#log.info('mesh: kernel rules applied again')
      this.#error = null
      this.#dirty = false
      this.#setUp = true
      this.#applied = want
      if (this.#want === want) return
    }
  }

  /** Before dispatch rules go, their counts move to the per-service base. */
  async #keepCounts(ports: readonly NatPort[]): Promise<void> {
    const counts = await this.#counts().catch(() => this.#lastCounts)
    for (const p of ports) this.#base.set(p.service, (this.#base.get(p.service) ?? 0) + (counts.get(p.port) ?? 0))
  }

  async #counts(): Promise<Map<number, number>> {
    const { stdout } = await run('iptables', [...WAIT, '-t', 'nat', '-S', this.chains.prefix, '-v'], { maxBuffer: 4 << 20 })
    this.#lastCounts = dispatchCounters(this.chains, stdout)
    return this.#lastCounts
  }

  /** Connections the kernel took per service (every connection to a port with a dispatch rule). */
  async requests(): Promise<Map<string, number>> {
    const counts = await this.#counts().catch(() => this.#lastCounts)
    const out = new Map(this.#base)
    for (const p of this.#applied.values()) out.set(p.service, (out.get(p.service) ?? 0) + (counts.get(p.port) ?? 0))
    return out
  }

  /** Removes this agent's chains and jumps (clean shutdown). */
  async close(): Promise<void> {
    this.#closed = true
    clearTimeout(this.#retry)
    await this.#running
    this.#applied = new Map()
    try {
      await removeChains(new Set([this.chains.prefix]))
    } catch (err) {
      this.#log.warn(`mesh: could not remove kernel rules ${this.chains.prefix}: ${(err as Error).message} (the next start removes them)`)
    }
  }
}
