// Service checks against a real HTTP server on loopback: they start when what
// the service registers runs, fold into passing/critical, start over (unknown)
// when the task restarts, keep a reported status across an agent restart, and
// run command checks in the service's task.
import test from 'ava'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { ServiceChecks, type CheckedTask } from '../../src/runtime/service-checks.ts'
import type { Driver, TaskHandle } from '../../src/runtime/driver.ts'
import type { ServiceSpec } from '../../src/structs/index.ts'

const check = { intervalMs: 50, timeoutMs: 500, retries: 2, startPeriodMs: 0 }

async function server(status: { code: number }) {
  const s = createServer((_, res) => res.writeHead(status.code).end())
  await new Promise<void>((r) => s.listen(0, '127.0.3.200', () => r()))
  return { s, port: (s.address() as AddressInfo).port }
}

const until = async (cond: () => boolean, what: string) => {
  const deadline = Date.now() + 5000
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

test('http service check: passing, critical after retries, unknown again after a restart', async (t) => {
  const status = { code: 200 }
  const { s, port } = await server(status)
  t.teardown(() => s.close())
  const spec: ServiceSpec = { name: 'web', port: 'http', tags: [], checks: [{ type: 'http', port: 'http', path: '/', ...check }] }
  let changes = 0
  const checks = new ServiceChecks({
    services: [spec, { name: 'plain', port: 'http', tags: [] }], mainTask: 'main',
    ports: [{ label: 'http', value: port, to: port, hostIp: '127.0.3.200' }], onChange: () => changes++,
  })
  t.deepEqual(checks.health, { web: { status: 'unknown' } }, 'services without checks are not tracked')
  const driver = {} as Driver
  const tasks = (state: CheckedTask['state'], startedAt: number, hook: CheckedTask['state'] = 'running') => new Map([
    ['main', { state, startedAt, handle: undefined, driver, longRunning: true }],
    ['hook', { state: hook, startedAt: 5, handle: undefined, driver, longRunning: false }],
  ])
  checks.sync(tasks('pending', 0), false)
  await new Promise((r) => setTimeout(r, 150))
  t.is(changes, 0, 'no checks before the allocation runs')
  checks.sync(tasks('running', 1), true)
  await until(() => checks.health!.web!.status === 'passing', 'passing')
  t.regex(checks.health!.web!.output!, /HTTP 200/)
  checks.sync(tasks('running', 1, 'dead'), true) // a poststart hook finished: the same run
  t.is(checks.health!.web!.status, 'passing')
  status.code = 500
  await until(() => checks.health!.web!.status === 'critical', 'critical')
  t.regex(checks.health!.web!.output!, /HTTP 500/)
  status.code = 200
  checks.sync(tasks('running', 2), true) // the task restarted
  t.is(checks.health!.web!.status, 'unknown')
  await until(() => checks.health!.web!.status === 'passing', 'passing again')
  checks.stop()
})

test('a reported status stands across an agent restart until the checks decide; command checks run in the task', async (t) => {
  const ran: string[] = []
  const driver = {
    exec: async (_h: TaskHandle, command: string) => {
      ran.push(command)
      return { exitCode: 1, stdout: '', stderr: 'not ready', timedOut: false }
    },
  } as unknown as Driver
  const spec: ServiceSpec = { name: 'db', port: 'db', tags: [], task: 'pg', checks: [{ type: 'command', command: 'pg_isready', args: [], ...check }] }
  const checks = new ServiceChecks({
    services: [spec], mainTask: undefined, ports: [], previous: { db: { status: 'passing', output: 'before' } }, onChange: () => undefined,
  })
  checks.sync(new Map([['pg', { state: 'running', startedAt: 1, handle: {} as TaskHandle, driver, longRunning: true }]]), true)
  await until(() => ran.length >= 1, 'a probe')
  t.is(checks.health!.db!.status, 'passing', 'one failure below retries keeps the reported status')
  await until(() => checks.health!.db!.status === 'critical', 'critical')
  t.regex(checks.health!.db!.output!, /exit code 1: not ready/)
  t.true(ran.every((c) => c === 'pg_isready'))
  checks.stop()
})
