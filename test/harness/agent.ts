// Real-process harness: start `shoal agent` processes, run the CLI, wait for conditions.
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { removeChains } from '../../src/mesh/nat-datapath.ts'

export const ROOT = fileURLToPath(new URL('../..', import.meta.url))
export const SHOAL = join(ROOT, 'bin/shoal')

export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, host, () => {
      const { port } = srv.address() as { port: number }
      srv.close(() => resolve(port))
    })
  })
}

export function tempDir(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `shoal-${prefix}-`))
}

export interface CliResult {
  code: number
  stdout: string
  stderr: string
}

/** Runs `shoal ARGS` as a real process against `address`. */
export function runCli(args: string[], address?: string, timeoutMs = 120_000): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env, ...(address ? { SHOAL_ADDR: address } : {}) }
    const p = spawn(SHOAL, args, { env, cwd: ROOT })
    let stdout = ''
    let stderr = ''
    p.stdout.on('data', (d: Buffer) => (stdout += d))
    p.stderr.on('data', (d: Buffer) => (stderr += d))
    const timer = setTimeout(() => {
      p.kill('SIGKILL')
      reject(new Error(`shoal ${args.join(' ')} did not finish within ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`))
    }, timeoutMs)
    p.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code: code ?? -1, stdout, stderr })
    })
  })
}

export interface AgentOptions {
  dataDir: string
  name: string
  /** Host (and optionally :port) for --bind. */
  bind: string
  httpPort: number
  /** One-node cluster (default); false runs a clustered agent. */
  dev?: boolean
  /** Peers for --join (clustered agents only). */
  join?: string[]
  extraArgs?: string[]
  /** A command the agent runs under (e.g. setpriv to drop root), before bin/shoal. */
  wrapper?: string[]
}

export class AgentProcess {
  readonly options: AgentOptions
  readonly address: string
  readonly proc: ChildProcess
  output = ''
  /** The agent's iptables chain when its mesh runs on the kernel data path (learnt once ready). */
  meshChain: string | undefined

  private constructor(options: AgentOptions, proc: ChildProcess) {
    this.options = options
    this.proc = proc
    this.address = `http://127.0.0.1:${options.httpPort}`
    proc.stdout?.on('data', (d: Buffer) => (this.output += d))
    proc.stderr?.on('data', (d: Buffer) => (this.output += d))
  }

  static async start(options: AgentOptions): Promise<AgentProcess> {
    const args = ['agent', ...(options.dev === false ? [] : ['--dev']), '--data-dir', options.dataDir, '--name', options.name,
      '--http', `127.0.0.1:${options.httpPort}`, '--bind', options.bind,
      ...(options.join ?? []).flatMap((j) => ['--join', j]), ...(options.extraArgs ?? [])]
    const [cmd, ...pre] = [...(options.wrapper ?? []), SHOAL]
    const agent = new AgentProcess(options, spawn(cmd!, [...pre, ...args], { cwd: ROOT }))
    await agent.waitReady()
    return agent
  }

  get exited(): boolean {
    return this.proc.exitCode !== null || this.proc.signalCode !== null
  }

  async waitReady(timeoutMs = 30_000): Promise<void> {
    await eventually(async () => {
      if (this.exited) throw new Error(`agent exited (${this.proc.exitCode ?? this.proc.signalCode}):\n${this.output}`)
      const res = await fetch(`${this.address}/v1/nodes`).catch(() => null)
      if (!res?.ok) return false
      const nodes = (await res.json()) as { name: string; status: string }[]
      return nodes.some((n) => n.name === this.options.name && n.status === 'ready')
    }, { timeoutMs, what: `agent ${this.options.name} ready` })
    const mesh = await this.get<{ datapath?: { chain?: string } }>('/v1/agent/mesh').catch(() => null)
    this.meshChain = mesh?.datapath?.chain ?? this.meshChain
  }

  async get<T>(path: string): Promise<T> {
    const res = await fetch(this.address + path)
    if (!res.ok) throw new Error(`GET ${path}: ${res.status} ${await res.text()}`)
    return (await res.json()) as T
  }

  /**
   * Ends the process with `signal` and waits for it to be gone. An agent
   * killed with SIGKILL cannot remove its mesh's iptables rules: they are
   * removed here, unless `keepMeshRules` (a test of what a restart finds).
   */
  async kill(signal: NodeJS.Signals = 'SIGKILL', o: { keepMeshRules?: boolean } = {}): Promise<void> {
    if (!this.exited) {
      const gone = new Promise((r) => this.proc.once('exit', r))
      this.proc.kill(signal)
      await gone
    }
    if (this.meshChain && !o.keepMeshRules && this.proc.signalCode === 'SIGKILL') await removeChains(new Set([this.meshChain]))
  }
}

/** Polls `check` until it returns a truthy value; fails with `what` on timeout. */
export async function eventually<T>(check: () => Promise<T | false | undefined | null>, opts: { timeoutMs?: number; intervalMs?: number; what: string }): Promise<T> {
  const deadline = Date.now() + (opts.timeoutMs ?? 30_000)
  let last: unknown
  while (Date.now() < deadline) {
    try {
      const v = await check()
      if (v) return v
    } catch (err) {
      last = err
    }
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 200))
  }
  throw new Error(`timed out waiting for ${opts.what}${last ? `: ${(last as Error).message}` : ''}`)
}
