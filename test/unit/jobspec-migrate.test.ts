// Job files: the group migrate block (how node drains move a service group).
import test from 'ava'
import { formatErrors, validateJob } from '../../src/jobspec/index.ts'
import { DEFAULT_MIGRATE_POLICY, migratePolicy } from '../../src/structs/index.ts'

type Json = Record<string, unknown>

function file(groupExtra: Json = {}, type = 'service'): Json {
  return { job: { web: { type, group: { fe: { ...groupExtra, task: { t: { driver: 'exec', config: { command: '/bin/true' } } } } } } } }
}

function errors(raw: unknown): string[] {
  const r = validateJob(raw)
  return r.ok ? [] : formatErrors(r.errors).split('\n')
}

test('absent: no block in the spec, Nomad defaults apply (max_parallel 1, checks, 10s, 5m)', (t) => {
  const r = validateJob(file())
  if (!r.ok) return t.fail(formatErrors(r.errors))
  t.is(r.spec.groups[0]!.migrate, undefined)
  t.deepEqual(migratePolicy(r.spec.groups[0]!), { maxParallel: 1, healthCheck: 'checks', minHealthyTimeMs: 10_000, healthyDeadlineMs: 300_000 })
  t.is(migratePolicy(r.spec.groups[0]!), DEFAULT_MIGRATE_POLICY)
})

test('given fields override the defaults', (t) => {
  const r = validateJob(file({ migrate: { max_parallel: 2, health_check: 'task_states', min_healthy_time: '2s' } }))
  if (!r.ok) return t.fail(formatErrors(r.errors))
  t.deepEqual(r.spec.groups[0]!.migrate, { maxParallel: 2, healthCheck: 'task_states', minHealthyTimeMs: 2_000, healthyDeadlineMs: 300_000 })
})

test('bad values are reported with their field paths', (t) => {
  t.deepEqual(errors(file({ migrate: { max_parallel: 0, health_check: 'http', min_healthy_time: 5, healthy_deadlin: '1m' } })), [
    'job.web.group.fe.migrate.healthy_deadlin: unknown field (did you mean "healthy_deadline"?)',
    'job.web.group.fe.migrate.max_parallel: must be an integer ≥ 1 (got 0)',
    'job.web.group.fe.migrate.health_check: must be one of "checks", "task_states" (got "http")',
    'job.web.group.fe.migrate.min_healthy_time: must be a duration string like "5s" or "2m" (got 5)',
  ])
  t.deepEqual(errors(file({ migrate: { min_healthy_time: '1m', healthy_deadline: '30s' } })), [
    'job.web.group.fe.migrate.healthy_deadline: healthy_deadline (30000 ms) must be longer than min_healthy_time (60000 ms)',
  ])
  t.deepEqual(errors(file({ migrate: 'fast' })), [
    'job.web.group.fe.migrate: must be an object like {"max_parallel": 1, "health_check": "checks", "min_healthy_time": "10s", "healthy_deadline": "5m"} (got "fast")',
  ])
})

test('only service jobs take a migrate block; at the job level it says where it belongs', (t) => {
  t.deepEqual(errors(file({ migrate: {} }, 'batch')), ['job.web.group.fe.migrate: only service jobs migrate (a batch job\'s allocations run until the drain deadline)'])
  t.deepEqual(errors(file({ migrate: {} }, 'system')), ['job.web.group.fe.migrate: only service jobs migrate (a system job\'s allocations are stopped last in a drain)'])
  const atJob = { job: { web: { migrate: {}, group: { fe: { task: { t: { driver: 'exec', config: { command: '/bin/true' } } } } } } } }
  t.deepEqual(errors(atJob), ['job.web.migrate: unknown field ("migrate" is a group setting; move it into a group block)'])
})
