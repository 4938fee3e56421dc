import { Command, Flags } from '@oclif/core'
import os from 'node:os'
import { join } from 'node:path'
import { Agent, DEFAULT_HTTP_PORT, defaultNodeName } from '../agent/agent.ts'
import { ApiServer } from '../api/server.ts'
import { fail } from './base.ts'

function hostPort(value: string, flag: string, defaultPort: number): { host: string; port: number } {
  const m = /^(\[[^\]]+\]|[^:]*)(?::(\d+))?$/.exec(value)
  const port = m?.[2] === undefined ? defaultPort : Number(m[2])
  if (!m || !m[1] || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`--${flag}: "${value}" is not HOST or HOST:PORT (port 0-65535)`)
  }
  return { host: m[1].replace(/^\[|\]$/g, ''), port }
}

export default class AgentCommand extends Command {
  static override description = `Run a Shoal agent.

With --dev the agent is a one-node cluster: server and client in one process.
The HTTP API listens on --http (default 127.0.0.1:${DEFAULT_HTTP_PORT}); allocations
publish their ports on the --bind host. Tasks keep running when the agent stops:
a restarted agent re-attaches to them.`

  static override examples = ['<%= config.bin %> agent --dev', '<%= config.bin %> agent --dev --data-dir /var/lib/shoal --http 127.0.0.1:4680 --bind 127.0.0.21']

  static override flags = {
    dev: Flags.boolean({ description: 'run a one-node cluster (server and client)', default: false }),
    'data-dir': Flags.string({ description: 'where state, node identity and allocation dirs live (default: ~/.shoal, or <tmp>/shoal-dev with --dev)' }),
    http: Flags.string({ description: `HOST:PORT of the HTTP API (default 127.0.0.1:${DEFAULT_HTTP_PORT})`, default: `127.0.0.1:${DEFAULT_HTTP_PORT}` }),
    bind: Flags.string({ description: 'address this node publishes allocation ports on', default: '127.0.0.1' }),
    name: Flags.string({ description: 'node name (default: the hostname)' }),
  }

  async run(): Promise<void> {
    const { flags } = await this.parse(AgentCommand)
    if (!flags.dev) fail(this, 'only --dev mode is available in this version: run "shoal agent --dev"', 1)
    let http: { host: string; port: number }
    let bind: { host: string }
    try {
      http = hostPort(flags.http, 'http', DEFAULT_HTTP_PORT)
      bind = hostPort(flags.bind, 'bind', 0)
    } catch (err) {
      fail(this, (err as Error).message, 1)
    }
    const dataDir = flags['data-dir'] ?? (flags.dev ? join(os.tmpdir(), 'shoal-dev') : join(os.homedir(), '.shoal'))
    const agent = await Agent.open({ dataDir, name: flags.name ?? defaultNodeName(), bindHost: bind.host, http: `${http.host}:${http.port}` })
    const api = new ApiServer(agent)
    let addr
    try {
      addr = await api.listen(http.host, http.port)
    } catch (err) {
      await agent.close()
      fail(this, `--http: cannot listen on ${http.host}:${http.port}: ${(err as Error).message}`, 1)
    }
    agent.config.http = `${http.host}:${addr.port}`
    try {
      await agent.start()
    } catch (err) {
      await api.close()
      await agent.close()
      fail(this, (err as Error).message, 1)
    }
    agent.log.info(`HTTP API on http://${agent.config.http}, data dir ${dataDir}`)
    const shutdown = async (signal: string) => {
      agent.log.info(`${signal}: shutting down (tasks keep running)`)
      await api.close()
      await agent.close()
      process.exit(0)
    }
    process.once('SIGINT', () => void shutdown('SIGINT'))
    process.once('SIGTERM', () => void shutdown('SIGTERM'))
    await new Promise(() => undefined)
  }
}
