// The group scaling block: defaults, normalisation and bad input with field paths.
import test from 'ava'
import { validateJob } from '../../src/jobspec/index.ts'

const job = (group: Record<string, unknown>, type = 'service') => ({
  job: { web: { type, group: { fe: { task: { t: { driver: 'exec', config: { command: '/bin/true' } } }, ...group } } } },
})
const errors = (raw: unknown) => {
  const r = validateJob(raw)
  return r.ok ? [] : r.errors.map((e) => `${e.field}: ${e.message}`)
}

test('a scaling block is normalised with Nomad-autoscaler defaults', (t) => {
  const r = validateJob(job({ count: 2, scaling: { max: 5, policy: { cpu_percent: 70 } } }))
  if (!r.ok) return t.fail(JSON.stringify(r.errors))
  t.deepEqual(r.spec.groups[0]!.scaling, {
    min: 2, max: 5, enabled: true, cooldownMs: 300_000, evaluationIntervalMs: 10_000, scaleInStep: 1,
    policy: { metric: 'cpu_percent', target: 70 },
  })
})

test('every field of a scaling block', (t) => {
  const r = validateJob(job({
    count: 3,
    scaling: {
      min: 1, max: 10, enabled: false, cooldown: '1m', evaluation_interval: '5s', scale_in_step: 2, scale_out_step: 4,
      policy: { requests_per_second: 50.5 },
    },
    network: { port: { http: {} } },
    service: [{ name: 'web', port: 'http', publish: { port: 8080 } }],
  }))
  if (!r.ok) return t.fail(JSON.stringify(r.errors))
  t.deepEqual(r.spec.groups[0]!.scaling, {
    min: 1, max: 10, enabled: false, cooldownMs: 60_000, evaluationIntervalMs: 5_000, scaleInStep: 2, scaleOutStep: 4,
    policy: { metric: 'requests_per_second', target: 50.5 },
  })
  t.is(validateJob(job({ scaling: { min: 0, max: 1, cooldown: '0', policy: { cpu_percent: 70 } } })).ok, true, 'min 0 and no cooldown are allowed')
})

test('bad scaling input is reported with field paths', (t) => {
  const g = 'job.web.group.fe'
  t.deepEqual(errors(job({ count: 1, scaling: { min: 5, max: 3, policy: { cpu_percent: 70 } } })), [
    `${g}.scaling.min: must be at most max (3) (got 5)`,
  ])
  t.deepEqual(errors(job({ count: 7, scaling: { min: 1, max: 3, policy: { cpu_percent: 70 } } })), [
    `${g}.count: must lie within scaling.min and scaling.max (1..3) (got 7)`,
  ])
  t.deepEqual(errors(job({ count: 0, scaling: { min: 1, max: 3, policy: { cpu_percent: 70 } } })), [
    `${g}.count: must lie within scaling.min and scaling.max (1..3) (got 0)`,
  ])
  t.deepEqual(errors(job({ scaling: { max: 3, policy: { cpu_precent: 70 } } })), [
    `${g}.scaling.policy.cpu_precent: unknown field (did you mean "cpu_percent"?)`,
  ])
  t.deepEqual(errors(job({ scaling: { max: 3, cooldown: '-1m', policy: { cpu_percent: 70 } } })), [
    `${g}.scaling.cooldown: must not be negative (got "-1m")`,
  ])
  t.deepEqual(errors(job({ scaling: { max: 3, policy: { cpu_percent: 70, requests_per_second: 10 } } })), [
    `${g}.scaling.policy: must name exactly one target, found "cpu_percent", "requests_per_second"`,
  ])
  t.deepEqual(errors(job({ scaling: { max: 3, policy: {} } })), [
    `${g}.scaling.policy: must name one target, like {"cpu_percent": 70} or {"requests_per_second": 50}`,
  ])
  t.deepEqual(errors(job({ scaling: { max: 3 } })), [
    `${g}.scaling.policy: is required: one target, like {"cpu_percent": 70} or {"requests_per_second": 50}`,
  ])
  t.deepEqual(errors(job({ scaling: { min: 1, policy: { cpu_percent: 70 } } })), [
    `${g}.scaling.max: is required: the most allocations the group may have, like {"min": 1, "max": 10, "policy": {"cpu_percent": 70}}`,
  ])
  t.deepEqual(errors(job({ scaling: { max: 3, policy: { cpu_percent: 0 } } })), [`${g}.scaling.policy.cpu_percent: must be a number > 0 (got 0)`])
  t.deepEqual(errors(job({ scaling: { max: 3, policy: { requests_per_second: '50' } } })), [`${g}.scaling.policy.requests_per_second: must be a number > 0 (got "50")`])
  t.deepEqual(errors(job({ scaling: { max: 3, policy: { requests_per_second: 50 } } })), [
    `${g}.scaling.policy.requests_per_second: needs a service in the group: the mesh counts requests per service (add a "service" block with "publish", or reach it through upstreams)`,
  ])
  t.deepEqual(errors(job({ scaling: { max: 3, scale_in_step: 0, evaluation_interval: '100ms', enabled: 'yes', policy: { cpu_percent: 70 } } })), [
    `${g}.scaling.enabled: must be true or false (got "yes")`,
    `${g}.scaling.evaluation_interval: must be at least 1s (got "100ms")`,
    `${g}.scaling.scale_in_step: must be an integer ≥ 1 (got 0)`,
  ])
  t.deepEqual(errors(job({ scaling: { max: 3, cpu_percent: 70 } })), [
    `${g}.scaling.cpu_percent: unknown field (targets go in the policy block, like "policy": {"cpu_percent": 70})`,
    `${g}.scaling.policy: is required: one target, like {"cpu_percent": 70} or {"requests_per_second": 50}`,
  ])
  t.deepEqual(errors(job({ scaling: 3 })), [`${g}.scaling: must be an object like {"min": 1, "max": 10, "policy": {"cpu_percent": 70}} (got 3)`])
  t.deepEqual(errors(job({ scaling: { max: 3, policy: { cpu_percent: 70 } } }, 'system')), [
    `${g}.scaling: a system job runs one allocation per node and has no count to scale`,
  ])
  t.deepEqual(errors(job({ scaling: { max: 3, policy: { cpu_percent: 70 } } }, 'batch')), [
    `${g}.scaling: only service jobs can be scaled (a batch job runs to completion)`,
  ])
})
