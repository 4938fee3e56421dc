// Upstream listeners survive an agent crash: a dev agent killed with SIGKILL
// and started again on its data dir re-attaches the running allocation and
// opens its upstream listeners again, in the host namespace (exec task) and in
// the group's namespace (docker task), before it re-attaches the tasks.
import test from 'ava'
import { execFileSync } from 'node:child_process'
import { rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type Docker from 'dockerode'
import { requireDocker, TEST_IMAGE } from '../helpers/docker.ts'
import { AgentProcess, eventually, freePort, runCli, tempDir } from '../harness/agent.ts'

interface MeshStatus {
  upstreams: { allocId: string; task: string; service: string; localPort: number; state: string }[]
  services: Record<string, { instances: number }>
}
interface AllocDetail { id: string; desiredStatus: string; clientStatus: string; taskStates: Record<string, { restarts: number; state: string }> }

const HOST = '127.0.4.10'
const MARK = `shoal-mesh-restart-test-${process.pid}`
const ctx = {} as { dir: string; agent: AgentProcess; docker: Docker; nodeId: string }

async function runJob(name: string, spec: object): Promise<void> {
  const file = join(ctx.dir, `${name}.json`)
  await writeFile(file, JSON.stringify({ job: { [name]: spec } }))
  const r = await runCli(['job', 'run', file], ctx.agent.address)
  if (r.code !== 0) throw new Error(`job run ${name}: ${r.stdout}${r.stderr}`)
}

test.before(async () => {
  ctx.docker = await requireDocker()
  ctx.dir = await tempDir('mesh-restart')
  ctx.agent = await AgentProcess.start({ dataDir: join(ctx.dir, 'data'), name: 'mesh-restart', bind: HOST, httpPort: await freePort() })
  ctx.nodeId = (await ctx.agent.get<{ nodeId: string }>('/v1/agent/self')).nodeId
})

test.after.always(async () => {
  await ctx.agent?.kill()
  if (ctx.docker && ctx.nodeId) {
    for (const c of await ctx.docker.listContainers({ all: true, filters: { label: [`shoal.node=${ctx.nodeId}`] } })) {
      await ctx.docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined)
    }
  }
  try { execFileSync('pkill', ['-f', MARK]) } catch { /* none left */ }
  if (ctx.dir) await rm(ctx.dir, { recursive: true, force: true })
})

test('after kill -9 and a restart on the same data dir, exec and docker tasks reach their upstream on localhost again', async (t) => {
  await runJob('web', {
    group: { www: {
      count: 2,
      network: { port: { http: { to: 8080 } } },
      service: [{ name: 'web', port: 'http', checks: [{ type: 'http', port: 'http', path: '/', interval: '1s', timeout: '2s' }] }],
      task: { httpd: {
        driver: 'docker', resources: { cpu: 50, memory: 16 }, kill_timeout: '1s',
        config: { image: TEST_IMAGE, command: '/bin/sh', args: ['-c', 'echo "$SHOAL_ALLOC_ID" > /www/index.html; exec /bin/httpd -f -p 8080 -h /www'], ports: ['http'] },
      } },
    } },
  })
  const healthy = await eventually(async () => {
    const h = (await ctx.agent.get<{ allocId: string; healthy: boolean }[]>('/v1/service/web')).filter((i) => i.healthy)
    return h.length === 2 && new Set(h.map((i) => i.allocId))
  }, { what: '2 healthy web instances', timeoutMs: 60_000 })
  const local = await freePort('127.0.0.1')
  await runJob('consumer', {
    group: { g: { task: {
      viaexec: {
        driver: 'exec', resources: { cpu: 20, memory: 64 },
        config: { command: process.execPath, args: ['-e', `setInterval(() => {}, 60_000) // ${MARK}`] },
        upstreams: [{ service: 'web', local_port: local }],
      },
      viadocker: {
        driver: 'docker', resources: { cpu: 20, memory: 16 }, kill_timeout: '1s',
        config: { image: TEST_IMAGE, command: '/bin/sh', args: ['-c', 'exec sleep 2147483647'] },
        upstreams: [{ service: 'web', local_port: 5000 }],
      },
    } } },
  })
  const [alloc] = (await ctx.agent.get<AllocDetail[]>('/v1/job/consumer/allocations')).filter((a) => a.desiredStatus === 'run')
  let seen = ''
  const ready = () => eventually(async () => {
    const st = await ctx.agent.get<MeshStatus>('/v1/agent/mesh')
    const ups = st.upstreams.filter((u) => u.allocId === alloc!.id)
    const a = await ctx.agent.get<AllocDetail>(`/v1/allocation/${alloc!.id}`)
    seen = `consumer ${a.clientStatus}; mesh ${JSON.stringify(st)}`
    return a.clientStatus === 'running' && ups.length === 2 && ups.every((u) => u.state === 'listening') && st.services.web?.instances === 2
  }, { what: 'consumer running, upstream listeners open, 2 web instances', timeoutMs: 60_000 })
    .catch((err: Error) => { throw new Error(`${err.message}; last seen: ${seen}; agent log: ${ctx.agent.output.split('\n').filter((l) => /WARN|ERROR|mesh|upstream/.test(l)).slice(-15).join(' / ')}`) })
  /** Three requests through each task's localhost: all answered by web instances. */
  const check = async (when: string) => {
    for (let i = 0; i < 3; i++) {
      const body = await fetch(`http://127.0.0.1:${local}/`, { signal: AbortSignal.timeout(5_000) }).then((r) => r.text())
      t.true(healthy.has(body.trim()), `${when}: the exec task's upstream (host namespace) answered ${JSON.stringify(body)}`)
    }
    const r = await runCli(['alloc', 'exec', alloc!.id.slice(0, 8), 'viadocker', '--', '/bin/sh', '-c',
      'for i in 1 2 3; do timeout 5 wget -qO- http://127.0.0.1:5000/ 2>&1 | tr "\\n" " "; echo; done'], ctx.agent.address)
    const answers = r.stdout.trim().split('\n').map((l) => l.trim())
    t.is(answers.length, 3, `${when}: ${r.stdout}${r.stderr}`)
    for (const a of answers) t.true(healthy.has(a), `${when}: the docker task's upstream (group namespace) answered ${JSON.stringify(a)}; all: ${JSON.stringify(answers)}`)
  }
  await ready()
  await check('before the restart')

  await ctx.agent.kill('SIGKILL')
  // The task's localhost:5000 is gone with the agent's sockets: nothing else holds them.
  ctx.agent = await AgentProcess.start(ctx.agent.options)
  await ready()
  await check('after the restart')
  const after = await ctx.agent.get<AllocDetail>(`/v1/allocation/${alloc!.id}`)
  t.is(after.taskStates.viadocker!.restarts, 0, 'the docker task was re-attached, not restarted')
  t.is(after.taskStates.viaexec!.restarts, 0, 'the exec task was re-attached, not restarted')

  await runCli(['job', 'stop', 'consumer'], ctx.agent.address)
  await eventually(async () => (await ctx.agent.get<MeshStatus>('/v1/agent/mesh')).upstreams.length === 0, { what: 'upstream listeners closed' })
  await runCli(['job', 'stop', 'web'], ctx.agent.address)
})
