// The update block: job level, group level over it, defaults, field-path errors.
import test from 'ava'
import { validateJob } from '../../src/jobspec/index.ts'
import { defaultUpdateStrategy, updateStrategyOf } from '../../src/structs/index.ts'

const task = { t: { driver: 'exec', config: { command: '/bin/true' } } }
const job = (jobExtra: object, groupExtra: object = {}, type = 'service') =>
  ({ job: { j: { type, ...jobExtra, group: { a: { task, ...groupExtra }, b: { task } } } } })

test('absent: no update stored, the defaults apply (Nomad\'s)', (t) => {
  const r = validateJob(job({}))
  if (!r.ok) return t.fail(JSON.stringify(r.errors))
  t.is(r.spec.groups[0]!.update, undefined)
  t.deepEqual(updateStrategyOf(r.spec.groups[0]!), {
    maxParallel: 1, minHealthyTimeMs: 10_000, healthyDeadlineMs: 300_000, progressDeadlineMs: 600_000,
    healthCheck: 'checks', autoRevert: false, canary: 0, autoPromote: false, staggerMs: 30_000,
  })
})

test('job level applies to every group; group level overrides its fields', (t) => {
  const r = validateJob(job(
    { update: { max_parallel: 2, min_healthy_time: '2s', healthy_deadline: '1m', auto_revert: true } },
    { update: { canary: 1, auto_promote: true, health_check: 'task_states', max_parallel: 3 } },
  ))
  if (!r.ok) return t.fail(JSON.stringify(r.errors))
  const [a, b] = r.spec.groups
  t.deepEqual(a!.update, { ...defaultUpdateStrategy(), maxParallel: 3, minHealthyTimeMs: 2_000, healthyDeadlineMs: 60_000, autoRevert: true, canary: 1, autoPromote: true, healthCheck: 'task_states' })
  t.deepEqual(b!.update, { ...defaultUpdateStrategy(), maxParallel: 2, minHealthyTimeMs: 2_000, healthyDeadlineMs: 60_000, autoRevert: true })
})

test('bad fields are named by their path', (t) => {
  const r = validateJob(job(
    { update: { max_parallel: 0, min_healthy_time: 'soon', health_check: 'http', auto_revert: 'true', canary: -1, stager: '1s' } },
    { update: { min_healthy_time: '5m', healthy_deadline: '1m' } },
  ))
  t.false(r.ok)
  const errors = r.ok ? [] : r.errors.map((e) => `${e.field}: ${e.message}`)
  t.true(errors.includes('job.j.update.max_parallel: must be an integer ≥ 1 (got 0)'), errors.join('\n'))
  t.true(errors.some((e) => e.startsWith('job.j.update.min_healthy_time: must be a duration')))
  t.true(errors.some((e) => e.startsWith('job.j.update.health_check: ') && e.includes('"checks"')), errors.join('\n'))
  t.true(errors.includes('job.j.update.auto_revert: must be true or false (got "true"; leave out the quotes: true)'), errors.join('\n'))
  t.true(errors.includes('job.j.update.canary: must be an integer ≥ 0 (got -1)'))
  t.true(errors.includes('job.j.update.stager: unknown field (did you mean "stagger"?)'), errors.join('\n'))
  t.true(errors.includes('job.j.group.a.update.min_healthy_time: must be shorter than healthy_deadline (1m)'), errors.join('\n'))
})

test('progress_deadline shorter than healthy_deadline, auto_promote without canaries, batch jobs: refused', (t) => {
  const r = validateJob(job({ update: { progress_deadline: '1m', auto_promote: true } }))
  const errors = r.ok ? [] : r.errors.map((e) => `${e.field}: ${e.message}`)
  t.true(errors.includes('job.j.update.progress_deadline: must be 0 (none) or at least healthy_deadline (5m)'), errors.join('\n'))
  t.true(errors.includes('job.j.update.auto_promote: needs canary ≥ 1'), errors.join('\n'))
  const batch = validateJob(job({}, { update: { max_parallel: 2 } }, 'batch'))
  t.deepEqual(batch.ok ? [] : batch.errors.map((e) => `${e.field}: ${e.message}`),
    ['job.j.group.a.update: is only for service jobs (this is a batch job): deployments roll out service jobs'])
})
