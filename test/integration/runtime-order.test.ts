// Task ordering in a real agent: a prestart task completes before the main tasks
// start, depends_on HEALTHY holds a task until its dependency's check passes, a
// non-essential task may finish, and poststop tasks run when the group stops.
import test from 'ava'
import { rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { requireDocker, TEST_IMAGE } from '../helpers/docker.ts'
import { AgentProcess, eventually, freePort, runCli, tempDir } from '../harness/agent.ts'

interface Ev { type: string; time: number; message: string }
interface TaskStateView { state: string; failed: boolean; health?: string; restarts: number; events: Ev[] }
interface AllocView { id: string; clientStatus: string; taskStates: Record<string, TaskStateView> }

const exec = (script: string, extra: Record<string, unknown> = {}) => ({
  driver: 'exec', config: { command: '/bin/sh', args: ['-c', script] }, resources: { cpu: 20, memory: 16 }, kill_timeout: '1s', ...extra,
})

const jobFile = {
  job: { order: { group: { g: {
    network: { port: { http: { to: 80 } } },
    restart: { attempts: 3, interval: '5m', delay: '1s', mode: 'fail' },
    task: {
      init: exec('sleep 1; echo ready > init.done', { lifecycle: { hook: 'prestart' } }),
      // Healthy only once httpd listens, two seconds after the container starts.
      db: {
        driver: 'docker',
        config: { image: TEST_IMAGE, command: '/bin/sh', args: ['-c', 'sleep 2; exec httpd -f -p 80 -h /www'], ports: ['http'] },
        resources: { cpu: 50, memory: 16 }, kill_timeout: '1s',
        check: [{ type: 'http', port: 'http', interval: '300ms', timeout: '1s' }],
      },
      // Fails (exit 7) if it starts before init finished.
      app: exec('test -f init.done || exit 7; while true; do sleep 1; done', { depends_on: [{ task: 'db', condition: 'HEALTHY' }] }),
      once: exec('exit 0', { essential: false }),
      cleanup: exec('echo bye', { lifecycle: { hook: 'poststop' } }),
    },
  } } } },
}

const firstEvent = (ts: TaskStateView, type: string) => ts.events.find((e) => e.type === type)

test('prestart completes first; depends_on HEALTHY waits for the check; non-essential tasks finish; poststop runs at stop', async (t) => {
  const docker = await requireDocker()
  const dir = await tempDir('order')
  const agent = await AgentProcess.start({ dataDir: join(dir, 'data'), name: 'it-order', bind: '127.0.0.42', httpPort: await freePort() })
  const self = await agent.get<{ nodeId: string }>('/v1/agent/self')
  t.teardown(async () => {
    await agent.kill()
    for (const c of await docker.listContainers({ all: true, filters: { label: [`shoal.node=${self.nodeId}`] } })) {
      await docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined)
    }
    await rm(dir, { recursive: true, force: true })
  })
  const file = join(dir, 'order.json')
  await writeFile(file, JSON.stringify(jobFile))
  const run = await runCli(['job', 'run', file, '--detach'], agent.address)
  t.is(run.code, 0, run.stdout + run.stderr)
  // --detach returns before the plan is applied: wait for the allocation to exist.
  const stub = await eventually(async () => (await agent.get<{ id: string }[]>('/v1/job/order/allocations'))[0], { what: 'the allocation placed' })
  const alloc = () => agent.get<AllocView>(`/v1/allocation/${stub.id}`)

  // While db is not yet healthy, app has not even been received.
  const early = await eventually(async () => {
    const a = await alloc()
    return a.taskStates.db?.state === 'running' && a
  }, { what: 'db running', timeoutMs: 30_000 })
  if (early.taskStates.db!.health !== 'healthy') t.deepEqual(early.taskStates.app!.events, [], 'app waits for db to be healthy')

  const a = await eventually(async () => {
    const x = await alloc()
    return x.clientStatus === 'running' && x.taskStates.app?.state === 'running' && x
  }, { what: 'allocation running with app started', timeoutMs: 30_000 })
  const s = a.taskStates
  // The prestart task completed before any main task was received.
  t.is(s.init!.state, 'dead')
  t.false(s.init!.failed)
  const initDone = firstEvent(s.init!, 'Completed')!
  t.truthy(initDone, JSON.stringify(s.init!.events))
  for (const main of ['db', 'app', 'once']) t.true(firstEvent(s[main]!, 'Received')!.time >= initDone.time, `${main} received after init completed`)
  t.is(s.app!.restarts, 0, 'app found init.done')
  // app was received only once db's check passed.
  const passing = firstEvent(s.db!, 'Check passing')!
  t.truthy(passing, JSON.stringify(s.db!.events))
  t.true(firstEvent(s.app!, 'Received')!.time >= passing.time, 'app started after db became healthy')
  t.is(s.db!.health, 'healthy')
  // The non-essential task finished and the group kept running.
  t.is(s.once!.state, 'dead')
  t.false(s.once!.failed)
  t.is(s.once!.events.at(-1)!.type, 'Completed')
  // The poststop task has not run yet.
  t.deepEqual(s.cleanup!.events, [])

  const status = await runCli(['alloc', 'status', stub!.id.slice(0, 8)], agent.address)
  t.regex(status.stdout, /Task "init" is "dead", restarts: 0/)

  const stop = await runCli(['job', 'stop', 'order'], agent.address)
  t.is(stop.code, 0, stop.stdout + stop.stderr)
  const after = await eventually(async () => {
    const x = await alloc()
    return x.clientStatus === 'complete' && x
  }, { what: 'allocation complete', timeoutMs: 30_000 })
  const cleanup = after.taskStates.cleanup!
  t.truthy(firstEvent(cleanup, 'Started'), JSON.stringify(cleanup.events))
  t.is(cleanup.events.at(-1)!.type, 'Completed')
  t.true(firstEvent(cleanup, 'Started')!.time >= firstEvent(after.taskStates.app!, 'Killed')!.time, 'poststop after the main tasks')
})
