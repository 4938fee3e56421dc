// Health checks run by a real agent: http/tcp probes against the published host
// port, command probes inside a container (docker exec) and an exec task; a
// failing check restarts its task through check_restart.
import test from 'ava'
import { rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { requireDocker, TEST_IMAGE } from '../helpers/docker.ts'
import { AgentProcess, eventually, freePort, runCli, tempDir } from '../harness/agent.ts'

interface TaskStateView { state: string; health?: string; restarts: number; events: { type: string; message: string }[] }
interface AllocView { id: string; group: string; clientStatus: string; taskStates: Record<string, TaskStateView> }

const httpd = (checks: unknown[], extra: Record<string, unknown> = {}) => ({
  driver: 'docker',
  config: { image: TEST_IMAGE, command: '/bin/httpd', args: ['-f', '-p', '80', '-h', '/www'], ports: ['http'] },
  resources: { cpu: 50, memory: 16 },
  kill_timeout: '1s',
  check: checks,
  ...extra,
})
const network = { port: { http: { to: 80 } } }
const restart = { attempts: 5, interval: '5m', delay: '1s', mode: 'fail' }

const jobFile = {
  job: { health: { group: {
    good: { network, restart, task: { web: httpd([
      { type: 'http', port: 'http', path: '/', interval: '500ms', timeout: '1s' },
      { type: 'tcp', port: 'http', interval: '500ms' },
      { type: 'command', command: '/bin/sh', args: ['-c', 'test -f /www/index.html'], interval: '500ms' },
    ]) } },
    bad: { network, restart, task: { web: httpd(
      [{ type: 'http', port: 'http', path: '/nope', expected_status: 200, interval: '300ms', retries: 2 }],
      { check_restart: { limit: 2, grace: '0s' } },
    ) } },
    proc: { restart, task: { worker: {
      driver: 'exec',
      config: { command: '/bin/sh', args: ['-c', 'touch ready; exec sleep 600'] },
      resources: { cpu: 50, memory: 16 },
      check: [{ type: 'command', command: '/bin/sh', args: ['-c', 'test -f ready && test "$SHOAL_TASK_NAME" = worker'], interval: '300ms' }],
    } } },
  } } },
}

test('passing checks report healthy; a failing http check restarts the task via check_restart', async (t) => {
  const docker = await requireDocker()
  const dir = await tempDir('health')
  const agent = await AgentProcess.start({ dataDir: join(dir, 'data'), name: 'it-health', bind: '127.0.0.41', httpPort: await freePort() })
  const self = await agent.get<{ nodeId: string }>('/v1/agent/self')
  t.teardown(async () => {
    await runCli(['job', 'stop', 'health'], agent.address, 30_000).catch(() => undefined)
    await agent.kill()
    for (const c of await docker.listContainers({ all: true, filters: { label: [`shoal.node=${self.nodeId}`] } })) {
      await docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined)
    }
    await rm(dir, { recursive: true, force: true })
  })
  const file = join(dir, 'health.json')
  await writeFile(file, JSON.stringify(jobFile))
  const run = await runCli(['job', 'run', file, '--detach'], agent.address)
  t.is(run.code, 0, run.stdout + run.stderr)

  const allocs = async () => {
    const stubs = await agent.get<{ id: string; group: string }[]>('/v1/job/health/allocations')
    return Promise.all(stubs.map((s) => agent.get<AllocView>(`/v1/allocation/${s.id}`)))
  }
  const byGroup = async (group: string) => (await allocs()).find((a) => a.group === group)

  const good = await eventually(async () => {
    const a = await byGroup('good')
    return a?.taskStates.web?.health === 'healthy' && a
  }, { what: 'good task healthy', timeoutMs: 30_000 })
  const goodEvents = good.taskStates.web!.events.filter((e) => e.type === 'Check passing').map((e) => e.message)
  t.true(goodEvents.some((m) => /^http check GET :http\/: HTTP 200 from GET http:\/\/127\.0\.0\.41:\d+\/$/.test(m)), goodEvents.join('\n'))
  t.true(goodEvents.some((m) => m.startsWith('tcp check :http: connected')), goodEvents.join('\n'))
  t.true(goodEvents.some((m) => m.startsWith('command check "/bin/sh -c test -f /www/index.html": exit code 0')), goodEvents.join('\n'))
  t.is(good.taskStates.web!.restarts, 0)

  const proc = await eventually(async () => {
    const a = await byGroup('proc')
    return a?.taskStates.worker?.health === 'healthy' && a
  }, { what: 'exec task healthy through a command check', timeoutMs: 30_000 })
  t.is(proc.taskStates.worker!.state, 'running')

  const bad = await eventually(async () => {
    const a = await byGroup('bad')
    return a && a.taskStates.web!.restarts >= 1 && a.taskStates.web!.state === 'running' && a
  }, { what: 'bad task restarted by check_restart', timeoutMs: 30_000 })
  const types = bad.taskStates.web!.events.map((e) => `${e.type}: ${e.message}`)
  t.true(types.some((e) => /^Check failing: http check GET :http\/nope: HTTP 404 from GET .*\/nope, expected 200$/.test(e)), types.join('\n'))
  t.true(types.some((e) => /^Restart Signaled: health check: http check GET :http\/nope failed 2 time\(s\) in a row/.test(e)), types.join('\n'))
  t.true(types.some((e) => e.startsWith('Restarting: ')), types.join('\n'))

  // The CLI shows health and check events.
  const status = await runCli(['alloc', 'status', bad.id.slice(0, 8)], agent.address)
  t.is(status.code, 0, status.stderr)
  t.regex(status.stdout, /Task "web" is "\w+", health: \w+, restarts: \d+/)
  t.regex(status.stdout, /Check failing\s+http check GET :http\/nope: HTTP 404/)
  const json = await runCli(['alloc', 'status', good.id.slice(0, 8), '--json'], agent.address)
  t.is((JSON.parse(json.stdout) as AllocView).taskStates.web!.health, 'healthy')
})
