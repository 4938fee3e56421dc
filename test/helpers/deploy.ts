// Shared by the deployment tests: a busybox httpd service whose page says its version.
import { writeFile } from 'node:fs/promises'
import { get } from 'node:http'
import type Docker from 'dockerode'
import { TEST_IMAGE } from './docker.ts'
import type { AgentProcess } from '../harness/agent.ts'

export interface AllocView {
  id: string; jobVersion: number; desiredStatus: string; clientStatus: string; deploymentId?: string
  ports: { label: string; value: number; hostIp: string }[]
}
export interface DeploymentView {
  id: string; jobVersion: number; status: string; statusDescription: string
  groups: Record<string, { desiredTotal: number; placed: number; healthy: number; unhealthy: number; desiredCanaries: number; promoted: boolean }>
  allocations: (AllocView & { healthy: boolean | null; canary: boolean })[]
}

/** A job file: `count` httpd instances answering with `page`, an http check on `checkPath`. */
export function webJob(id: string, o: { count: number; page: string; update: object; checkPath?: string }): string {
  return JSON.stringify({ job: { [id]: { update: o.update, group: { web: {
    count: o.count,
    network: { port: { http: { to: 80 } } },
    restart: { attempts: 0, interval: '1m', delay: '1s', mode: 'fail' },
    task: { httpd: {
      driver: 'docker',
      config: { image: TEST_IMAGE, command: '/bin/sh', args: ['-c', 'echo "$PAGE" > /www/index.html && exec /bin/httpd -f -p 80 -h /www'], ports: ['http'] },
      env: { PAGE: o.page },
      resources: { cpu: 20, memory: 16 },
      kill_timeout: '2s',
      check: [{ type: 'http', port: 'http', path: o.checkPath ?? '/', interval: '300ms', timeout: '1s' }],
    } },
  } } } } })
}

export async function writeJob(path: string, text: string): Promise<void> {
  await writeFile(path, text)
}

/** Live allocations (desired run, not terminal). */
export async function liveAllocs(agent: AgentProcess, job: string): Promise<AllocView[]> {
  const all = await agent.get<AllocView[]>(`/v1/job/${job}/allocations`)
  return all.filter((a) => a.desiredStatus === 'run' && (a.clientStatus === 'running' || a.clientStatus === 'pending'))
}

/** GETs the page on a fresh connection; its text, or null when it does not answer 200 within the timeout. */
export function page(addr: string, timeoutMs = 1_000): Promise<string | null> {
  const [host, port] = [addr.slice(0, addr.lastIndexOf(':')), Number(addr.slice(addr.lastIndexOf(':') + 1))]
  return new Promise((resolve) => {
    const req = get({ host, port, path: '/', agent: false, timeout: timeoutMs }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => (body += d))
      res.on('end', () => resolve(res.statusCode === 200 ? body.trim() : null))
      res.on('error', () => resolve(null))
    })
    req.on('timeout', () => req.destroy(new Error('timeout')))
    req.on('error', () => resolve(null))
  })
}

export const addrOf = (a: AllocView) => `${a.ports[0]!.hostIp}:${a.ports[0]!.value}`

/** Removes every container the agent's node left behind. */
export async function removeNodeContainers(docker: Docker, nodeId: string): Promise<void> {
  for (const c of await docker.listContainers({ all: true, filters: { label: [`shoal.node=${nodeId}`] } })) {
    await docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined)
  }
}
