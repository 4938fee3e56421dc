// HealthTracker: probe outcomes and time in, health, transition events and restarts out.
import test from 'ava'
import { describeCheck, HealthTracker, probe } from '../../src/runtime/health.ts'
import { RestartTracker } from '../../src/runtime/restart.ts'
import type { TaskCheck } from '../../src/structs/index.ts'

const http: TaskCheck = { type: 'http', port: 'http', path: '/health', intervalMs: 1000, timeoutMs: 500, retries: 2, startPeriodMs: 0 }
const tcp: TaskCheck = { type: 'tcp', port: 'db', intervalMs: 1000, timeoutMs: 500, retries: 1, startPeriodMs: 0 }
const ok = { ok: true, message: 'HTTP 200' }
const bad = { ok: false, message: 'HTTP 500' }

test('describeCheck names the check', (t) => {
  t.is(describeCheck(http), 'http check GET :http/health')
  t.is(describeCheck(tcp), 'tcp check :db')
  t.is(describeCheck({ ...tcp, type: 'command', command: 'pg_isready', args: ['-q'] }), 'command check "pg_isready -q"')
})

test('unknown until a check passes; unhealthy after `retries` consecutive failures; events on transitions only', (t) => {
  const h = new HealthTracker([http], undefined, 0)
  t.is(h.health, 'unknown')
  let u = h.record(0, bad, 1000)
  t.is(u.health, 'unknown')
  t.deepEqual(u.events, [{ type: 'Check failing', message: 'http check GET :http/health: HTTP 500' }])
  u = h.record(0, bad, 2000)
  t.is(u.health, 'unhealthy')
  t.deepEqual(u.events, [], 'no event for a repeated failure')
  u = h.record(0, ok, 3000)
  t.is(u.health, 'healthy')
  t.deepEqual(u.events, [{ type: 'Check passing', message: 'http check GET :http/health: HTTP 200' }])
  t.deepEqual(h.record(0, ok, 4000).events, [])
  // One failure after healthy: still healthy until retries is reached.
  t.is(h.record(0, bad, 5000).health, 'healthy')
  t.is(h.record(0, bad, 6000).health, 'unhealthy')
  t.false('restart' in u)
})

test('the task is healthy only when every check is; unhealthy when any is', (t) => {
  const h = new HealthTracker([http, tcp], undefined, 0)
  t.is(h.record(0, ok, 1).health, 'unknown')
  t.is(h.record(1, ok, 1).health, 'healthy')
  t.is(h.record(1, bad, 2).health, 'unhealthy')
})

test('failures within start_period do not count', (t) => {
  const h = new HealthTracker([{ ...http, retries: 1, startPeriodMs: 10_000 }], undefined, 0)
  t.is(h.record(0, bad, 5_000).health, 'unknown')
  t.is(h.record(0, bad, 9_999).health, 'unknown')
  t.is(h.record(0, bad, 10_000).health, 'unhealthy')
})

test('check_restart asks for a restart after `limit` consecutive failures past grace', (t) => {
  const h = new HealthTracker([http], { limit: 2, graceMs: 5_000 }, 0)
  t.false('restart' in h.record(0, bad, 1_000), 'within grace')
  t.false('restart' in h.record(0, bad, 4_000), 'within grace')
  t.false('restart' in h.record(0, bad, 5_000))
  const u = h.record(0, bad, 6_000)
  t.is(u.restart, 'http check GET :http/health failed 2 time(s) in a row: HTTP 500')
  // A pass resets the count.
  h.record(0, bad, 7_000)
  h.record(0, ok, 8_000)
  t.false('restart' in h.record(0, bad, 9_000))
})

test('probes: no allocated port, connection refused, command through exec', async (t) => {
  const ports = [{ label: 'db', value: 1, hostIp: '127.0.0.1', to: 1 }]
  const exec = async (command: string, args: readonly string[]) => ({ exitCode: command === 'true' ? 0 : 2, stdout: args.join(' '), stderr: '' })
  t.deepEqual(await probe(http, { ports, exec }), { ok: false, message: 'port "http" has no allocated port' })
  t.deepEqual(await probe(tcp, { ports, exec }), { ok: false, message: '127.0.0.1:1: connection refused' })
  t.deepEqual(await probe({ ...tcp, type: 'command', command: 'true', args: [] }, { ports, exec }), { ok: true, message: 'exit code 0' })
  t.deepEqual(await probe({ ...tcp, type: 'command', command: 'false', args: ['not', 'ready'] }, { ports, exec }), { ok: false, message: 'exit code 2: not ready' })
  const slow = async () => ({ exitCode: -1, stdout: '', stderr: '', timedOut: true })
  t.deepEqual(await probe({ ...tcp, type: 'command', command: 'x' }, { ports, exec: slow }), { ok: false, message: 'no exit within 500 ms' })
})

test('a restart triggered by checks counts as a failure, even after exit 0 of a batch task', (t) => {
  const policy = { attempts: 1, intervalMs: 60_000, delayMs: 1_000, mode: 'fail' as const }
  const r = new RestartTracker(policy, 'batch', 0)
  t.is(r.onExit({ exitCode: 0, restartTriggered: true }, 1).action, 'restart')
  t.is(r.onExit({ exitCode: 0, restartTriggered: true }, 2).action, 'fail')
})
