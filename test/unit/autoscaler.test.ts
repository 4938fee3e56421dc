// The leader's autoscaler loop over a real Fsm, with its seams faked: the
// clock, HTTP to the agents (mesh counters, allocation stats) and the Raft
// proposer (commands applied to the local Fsm in order).
import test, { type ExecutionContext } from 'ava'
import { Autoscaler, type JsonFetch } from '../../src/agent/autoscaler.ts'
import { ClusterOps } from '../../src/agent/ops.ts'
import { Fsm, type Command, type NewAlloc } from '../../src/fsm/index.ts'
import { validateJob } from '../../src/jobspec/index.ts'
import type { JobSpec, ScalingEvent } from '../../src/structs/index.ts'
import { newEval, newNode } from './fixtures.ts'

const quiet = { info: () => undefined, warn: () => undefined }

function spec(policy: object, extra: object = {}): JobSpec {
  const r = validateJob({ job: { api: { group: { g: {
    count: 2,
    network: { port: { http: { to: 80 } } },
    service: [{ name: 'api', port: 'http', publish: { port: 8080 } }],
    scaling: { min: 1, max: 6, cooldown: '30s', evaluation_interval: '10s', policy, ...extra },
    task: { t: { driver: 'docker', config: { image: 'img', ports: ['http'] }, resources: { cpu: 200, memory: 32 } } },
  } } } } })
  if (!r.ok) throw new Error(JSON.stringify(r.errors))
  return r.spec
}

async function setup(t: ExecutionContext, policy: object, extra: object = {}, deploymentStatus?: 'running' | 'successful') {
  const fsm = new Fsm()
  let index = 0
  const clock = { now: 1_000_000 }
  let onPropose: (() => Promise<void>) | undefined
  const proposer = { propose: async (cmd: Command) => fsm.apply(++index, cmd) }
  const ops = new ClusterOps(proposer, fsm.state, () => clock.now)
  for (const n of ['n1', 'n2']) await proposer.propose({ type: 'NodeRegister', node: newNode(n, { http: `${n}.test:4680` }), time: 1 })
  await proposer.propose({ type: 'JobRegister', spec: spec(policy, extra), time: 1, eval: newEval('e0', 'api') })
  const place: NewAlloc[] = ['n1', 'n2'].map((n, i) => ({
    id: `a${i}`, name: `api.g[${i}]`, jobId: 'api', jobVersion: 0, group: 'g', index: i, nodeId: `id-${n}`, evalId: 'e0',
    desiredStatus: 'run', desiredDescription: '', clientStatus: 'running', clientDescription: '', taskStates: {},
    resources: { cpu: 200, memoryMB: 32, ports: [{ label: 'http', value: 20000 + i, to: 80, hostIp: '127.0.0.1' }] },
    rescheduleCount: 0, createTime: 1, modifyTime: 1,
  }))
  await proposer.propose({
    type: 'PlanApply', evalId: 'e0', place, stop: [], newEvals: [], time: 1,
    ...(deploymentStatus ? { deployment: {
      id: 'd0', jobId: 'api', jobVersion: 0, jobCreateIndex: 3, status: deploymentStatus, statusDescription: '', groups: {}, createTime: 1, modifyTime: 1,
    } } : {}),
    evalUpdate: { status: 'complete', statusDescription: '', failedGroups: {}, modifyTime: 1 },
  })
  const answers = new Map<string, unknown>()
  const fetch: JsonFetch = async (url) => {
    await onPropose?.()
    const host = new URL(url).host + new URL(url).pathname
    if (!answers.has(host)) throw new Error('ECONNREFUSED')
    return answers.get(host)
  }
  const scaler = new Autoscaler({ fsm, ops, log: quiet, now: () => clock.now, fetch })
  const events = () => fsm.state.get('scalingEvents', 'api/g')?.events ?? []
  const count = () => fsm.state.get('jobs', 'api')!.groups[0]!.count
  return { fsm, ops, clock, answers, scaler, events, count, setOnFetch: (f: typeof onPropose) => (onPropose = f) }
}

const mesh = (requests: number) => ({ listeners: [], services: { api: { requests, activeConnections: 0, failures: 0 } } })
const last = (events: ScalingEvent[]) => events.at(-1)!

test('requests per second: a baseline first, then the rate over the healthy instances scales the group; cooldown holds the next round', async (t) => {
  const s = await setup(t, { requests_per_second: 10 })
  s.answers.set('n1.test:4680/v1/agent/mesh', mesh(100))
  s.answers.set('n2.test:4680/v1/agent/mesh', mesh(50))
  await s.scaler.evaluate('api', 'g')
  t.like(last(s.events()), { reason: 'missing-metrics', from: 2, to: 2 })
  t.regex(last(s.events()).message, /collecting a first sample/)

  s.clock.now += 10_000
  s.answers.set('n1.test:4680/v1/agent/mesh', mesh(100 + 250))
  s.answers.set('n2.test:4680/v1/agent/mesh', mesh(50 + 150))
  await s.scaler.evaluate('api', 'g')
  // 400 requests in 10 s over 2 instances: 20 per instance, target 10 → 4
  t.is(s.count(), 4)
  t.like(last(s.events()), { reason: 'scaled', from: 2, to: 4, jobVersion: 1, source: 'autoscaler', measurement: { metric: 'requests_per_second', value: 20, target: 10, instances: 2 } })
  t.is(s.fsm.state.get('jobs', 'api')!.version, 1)
  t.true(s.fsm.state.evalsOfJob('api').some((e) => e.triggeredBy === 'job-scaling'), 'the change is evaluated like any job version')

  const before = s.events().length
  s.clock.now += 10_000
  await s.scaler.evaluate('api', 'g')
  t.is(s.events().length, before, 'in cooldown: nothing measured, nothing recorded')
  t.is(s.count(), 4)
})

test('an unreachable agent voids the reading (no change, with the reason); so does a missing CPU sample', async (t) => {
  const s = await setup(t, { requests_per_second: 10 })
  s.answers.set('n1.test:4680/v1/agent/mesh', mesh(1))
  await s.scaler.evaluate('api', 'g')
  t.like(last(s.events()), { reason: 'missing-metrics', from: 2, to: 2 })
  t.regex(last(s.events()).message, /mesh counters unavailable \(node n2: ECONNREFUSED\)/)

  const c = await setup(t, { cpu_percent: 50 })
  const stats = (mhz: number) => ({ tasks: { t: { state: 'running', cpu: { percent: mhz / 10, mhz }, reserved: { cpu: 200, memoryMB: 32 } } } })
  c.answers.set('n1.test:4680/v1/client/allocation/a0/stats', stats(300))
  await c.scaler.evaluate('api', 'g')
  t.like(last(c.events()), { reason: 'missing-metrics' })
  t.regex(last(c.events()).message, /1 of 2 allocations did not report CPU \(a1: node n2: ECONNREFUSED\)/)
  c.answers.set('n2.test:4680/v1/client/allocation/a1/stats', stats(100))
  await c.scaler.evaluate('api', 'g')
  // (150% + 50%) / 2 = 100% of reserved, target 50 → 4
  t.like(last(c.events()), { reason: 'scaled', from: 2, to: 4, measurement: { metric: 'cpu_percent', value: 100, instances: 2 } })
})

test('a job changed while measuring (job scale) wins: the decision is dropped and taken again next round', async (t) => {
  const s = await setup(t, { cpu_percent: 50 })
  const stats = { tasks: { t: { state: 'running', cpu: { percent: 60, mhz: 600 }, reserved: { cpu: 200, memoryMB: 32 } } } }
  s.answers.set('n1.test:4680/v1/client/allocation/a0/stats', stats)
  s.answers.set('n2.test:4680/v1/client/allocation/a1/stats', stats)
  let scaled = false
  s.setOnFetch(async () => {
    if (scaled) return
    scaled = true
    await s.ops.scaleGroup(s.fsm.state.get('jobs', 'api')!, 'g', 3, { source: 'manual', reason: 'manual', message: 'by hand' })
  })
  await s.scaler.evaluate('api', 'g')
  t.is(s.count(), 3, 'the manual count stands')
  t.deepEqual(s.events().map((e) => [e.source, e.from, e.to]), [['manual', 2, 3]])
  s.clock.now += 30_000
  await s.scaler.evaluate('api', 'g')
  // 300% of reserved over 2 running allocations (the third is not placed here), target 50 → 12, max 6
  t.like(last(s.events()), { source: 'autoscaler', reason: 'scaled', from: 3, to: 6 })
  t.regex(last(s.events()).message, /3 → 6 \(wants 12; limited to max 6\)/)
})

test('a paused group records why once and is not measured', async (t) => {
  const s = await setup(t, { cpu_percent: 50 }, { enabled: false })
  await s.scaler.evaluate('api', 'g')
  await s.scaler.evaluate('api', 'g')
  t.deepEqual(s.events().map((e) => e.reason), ['disabled'])
  t.is(s.count(), 2)
})

test('no decision while a deployment of the job is running; one that ended does not hold it', async (t) => {
  const s = await setup(t, { cpu_percent: 50 }, {}, 'running')
  t.is(s.fsm.state.latestDeployment('api')?.status, 'running')
  await s.scaler.evaluate('api', 'g')
  t.like(last(s.events()), { reason: 'deployment-running', from: 2, to: 2 })
  const done = await setup(t, { cpu_percent: 50 }, {}, 'successful')
  await done.scaler.evaluate('api', 'g')
  t.like(last(done.events()), { reason: 'missing-metrics' })
})
