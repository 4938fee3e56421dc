// Rolling updates and canaries (pure): planRollout as a table, and whole
// rollouts driven through the real StateStore, applyCommand and schedule(),
// with simulated clients reporting health, checking the invariants at every step.
import test from 'ava'
import type { AllocClientUpdate, StateStore } from '../../src/fsm/index.ts'
import { schedulerView } from '../../src/agent/leader.ts'
import { planRollout } from '../../src/scheduler/deployment.ts'
import { schedule } from '../../src/scheduler/index.ts'
import type { Allocation, Deployment, DeploymentGroup, TaskGroup } from '../../src/structs/index.ts'
import { defaultUpdateStrategy, isLive } from '../../src/structs/index.ts'
import { alloc, fsmStore, group, job, newEval, newNode, spec } from './fixtures.ts'

const dgroup = (over: Partial<DeploymentGroup> = {}): DeploymentGroup => ({
  desiredTotal: 4, desiredCanaries: 0, placedCanaries: [], promoted: false, autoRevert: false, autoPromote: false,
  progressDeadlineMs: 0, placed: 0, healthy: 0, unhealthy: 0, ...over,
})
const deployment = (g: Partial<DeploymentGroup> = {}, over: Partial<Deployment> = {}): Deployment => ({
  id: 'd1', jobId: 'web', jobVersion: 1, jobCreateIndex: 1, status: 'running', statusDescription: '', groups: { fe: dgroup(g) },
  createTime: 0, modifyTime: 0, createIndex: 1, modifyIndex: 1, ...over,
})
const fe = (maxParallel: number, canary = 0): TaskGroup => group('fe', 4, { update: { ...defaultUpdateStrategy(), maxParallel, canary } })
const v0 = job(spec('web', [group('fe', 4)]))
const v1 = job(spec('web', [fe(2)]), { version: 1 })
const old = [3, 1, 0, 2].map((i) => alloc(`o${i}`, v0, 'fe', i, 'id-n1'))
const fresh = (id: string, index: number, over: Partial<Allocation> = {}) => alloc(id, v1, 'fe', index, 'id-n1', { deploymentId: 'd1', ...over })
const ids = (list: readonly Allocation[]) => list.map((a) => a.id)

test('rollout table: no deployment replaces everything; paused waits; max_parallel minus replacements not yet healthy', (t) => {
  const none = planRollout(fe(2), undefined, old, [])
  t.deepEqual(ids(none.replace), ['o0', 'o1', 'o2', 'o3'])
  const paused = planRollout(fe(2), deployment({}, { status: 'paused' }), old, [])
  t.deepEqual(ids(paused.wait), ['o0', 'o1', 'o2', 'o3'])
  t.deepEqual(paused.replace, [])
  const first = planRollout(fe(2), deployment(), old, [])
  t.deepEqual([ids(first.replace), ids(first.wait)], [['o0', 'o1'], ['o2', 'o3']], 'lowest slots first, max_parallel of them')
  const starting = planRollout(fe(2), deployment(), old.filter((a) => a.index >= 1), [fresh('n0', 0, { clientStatus: 'pending' })])
  t.deepEqual(ids(starting.replace), ['o1'], 'one replacement still starting: one more')
  const unhealthy = planRollout(fe(2), deployment(), old.filter((a) => a.index >= 2), [
    fresh('n0', 0, { deploymentStatus: { healthy: false, timestamp: 1 } }), fresh('n1', 1),
  ])
  t.deepEqual(unhealthy.replace, [], 'an unhealthy and a starting replacement: none')
  const healthy = planRollout(fe(2), deployment(), old.filter((a) => a.index >= 2), [
    fresh('n0', 0, { deploymentStatus: { healthy: true, timestamp: 1 } }), fresh('n1', 1, { deploymentStatus: { healthy: true, timestamp: 1 } }),
  ])
  t.deepEqual(ids(healthy.replace), ['o2', 'o3'])
  const failed = planRollout(fe(2), deployment({}, { status: 'failed' }), old, [])
  t.deepEqual(failed.replace, [], 'a failed deployment replaces nothing more')
})

test('rollout table: canaries beside the old allocations until promoted; then their slots retire and the rest roll', (t) => {
  const c = fe(1, 1)
  const before = planRollout(c, deployment({ desiredCanaries: 1 }), old, [])
  t.deepEqual(before.canaryIndexes, [0])
  t.deepEqual(ids(before.wait), ['o0', 'o1', 'o2', 'o3'])
  const canary = fresh('c0', 0, { deploymentStatus: { canary: true, timestamp: 1 } })
  const placed = planRollout(c, deployment({ desiredCanaries: 1 }), old, [canary])
  t.deepEqual([placed.canaryIndexes, ids(placed.canaries), placed.replace], [[], ['c0'], []], 'one canary is enough; nothing stops')
  const healthyCanary = { ...canary, deploymentStatus: { canary: true, healthy: true, timestamp: 2 } }
  const promoted = planRollout(c, deployment({ desiredCanaries: 1, promoted: true }), old, [healthyCanary])
  t.deepEqual([ids(promoted.retire), ids(promoted.replace), ids(promoted.wait)], [['o0'], ['o1'], ['o2', 'o3']])
})

/** A one-job cluster driven through the real FSM: schedule, apply, and clients that report. */
function cluster() {
  const { state, applyOk: apply } = fsmStore()
  let ids = 0
  let evals = 0
  let now = 1_000
  apply({ type: 'NodeRegister', node: newNode('n1'), time: 0 })
  apply({ type: 'NodeRegister', node: newNode('n2'), time: 0 })
  const live = () => state.allocsOfJob('web').filter(isLive)
  return {
    state, apply, live,
    register(g: TaskGroup) {
      apply({ type: 'JobRegister', spec: spec('web', [g]), time: now, eval: newEval(`e${++evals}`, 'web') })
    },
    /** Schedules every pending evaluation once. */
    schedule() {
      for (const ev of state.evalsByStatus('pending')) {
        const plan = schedule(schedulerView(state), ev, { now, newId: () => `x${++ids}` })
        apply({
          type: 'PlanApply', evalId: ev.id, place: plan.place, stop: plan.stop, inPlace: plan.inPlace, evalUpdate: plan.evalUpdate,
          newEvals: plan.newEvals, time: now, ...(plan.deployment ? { deployment: plan.deployment } : {}),
          ...(plan.deploymentUpdates.length ? { deploymentUpdates: plan.deploymentUpdates } : {}),
        })
      }
    },
    /** Clients: stopped allocations complete; new ones run and report health (healthy unless `sick` says not); an evaluation follows, as ClusterOps adds. */
    clients(sick: (a: Allocation) => boolean = () => false) {
      now += 1_000
      const updates = state.allocsOfJob('web').flatMap((a): AllocClientUpdate[] => {
        if (a.desiredStatus === 'stop' && a.clientStatus !== 'complete') return [{ allocId: a.id, clientStatus: 'complete', clientDescription: '', taskStates: {} }]
        if (a.desiredStatus === 'run' && a.deploymentStatus?.healthy === undefined) {
          return [{ allocId: a.id, clientStatus: 'running', clientDescription: '', taskStates: {}, deploymentStatus: { healthy: !sick(a), timestamp: now } }]
        }
        return []
      })
      apply({ type: 'AllocClientUpdate', updates, time: now, evals: [newEval(`e${++evals}`, 'web', { triggeredBy: 'deployment-watcher' })] })
    },
    deployment: () => state.latestDeployment('web')!,
  }
}

const envOf = (a: Allocation, st: StateStore) => st.get('jobVersions', `web@${String(a.jobVersion).padStart(10, '0')}`)!.groups[0]!.tasks[0]!.env.V

for (const maxParallel of [1, 2, 3]) {
  test(`rolling update of 4 with max_parallel ${maxParallel}: never more than count live, never fewer than count − max_parallel healthy, all end new`, (t) => {
    const c = cluster()
    const withEnv = (v: string) => group('fe', 4, { update: { ...defaultUpdateStrategy(), maxParallel }, tasks: [{ ...group('fe', 1).tasks[0]!, env: { V: v } }] })
    c.register(withEnv('old'))
    c.schedule()
    c.clients()
    t.is(c.deployment().status, 'running', 'the first version has a deployment too')
    t.like(c.deployment().groups.fe, { placed: 4, healthy: 4 })
    c.register(withEnv('new'))
    let steps = 0
    while (c.live().some((a) => envOf(a, c.state) === 'old') || c.live().some((a) => !a.deploymentStatus?.healthy)) {
      if (++steps > 20) return t.fail('the rollout did not finish')
      c.schedule()
      const live = c.live()
      t.true(live.length <= 4, `step ${steps}: ${live.length} live`)
      const serving = live.filter((a) => a.deploymentStatus?.healthy === true).length
      t.true(serving >= 4 - maxParallel, `step ${steps}: ${serving} healthy`)
      c.clients()
    }
    t.is(steps, Math.ceil(4 / maxParallel), 'one batch per round of health reports')
    const d = c.deployment()
    t.is(d.jobVersion, 1)
    t.like(d.groups.fe, { placed: 4, healthy: 4, unhealthy: 0 })
    t.true(c.live().every((a) => a.deploymentId === d.id && envOf(a, c.state) === 'new'))
  })
}

test('canary 1: one new allocation beside the four old until promotion, then the rest roll', (t) => {
  const c = cluster()
  const withEnv = (v: string) => group('fe', 4, { update: { ...defaultUpdateStrategy(), canary: 1 }, tasks: [{ ...group('fe', 1).tasks[0]!, env: { V: v } }] })
  c.register(withEnv('old'))
  c.schedule()
  c.clients()
  c.register(withEnv('new'))
  for (let i = 0; i < 3; i++) {
    c.schedule()
    c.clients()
    const live = c.live()
    t.is(live.length, 5, 'count + 1 canary')
    t.is(live.filter((a) => envOf(a, c.state) === 'new').length, 1)
  }
  const d = c.deployment()
  t.like(d.groups.fe, { desiredCanaries: 1, placed: 1, healthy: 1, promoted: false })
  t.is(d.groups.fe!.placedCanaries.length, 1)
  c.apply({ type: 'DeploymentPromote', deploymentId: d.id, time: 5, eval: newEval('promote', 'web') })
  let steps = 0
  while (c.live().some((a) => envOf(a, c.state) === 'old') || c.live().some((a) => !a.deploymentStatus?.healthy)) {
    if (++steps > 20) return t.fail('the rollout did not finish')
    c.schedule()
    t.true(c.live().length <= 5)
    c.clients()
  }
  t.is(c.live().length, 4)
  t.like(c.deployment().groups.fe, { promoted: true, healthy: 4 })
})

test('an unhealthy replacement stops the rollout: nothing more is replaced', (t) => {
  const c = cluster()
  const withEnv = (v: string) => group('fe', 4, { tasks: [{ ...group('fe', 1).tasks[0]!, env: { V: v } }] })
  c.register(withEnv('old'))
  c.schedule()
  c.clients()
  c.register(withEnv('bad'))
  for (let i = 0; i < 4; i++) {
    c.schedule()
    c.clients(() => true)
  }
  const live = c.live()
  t.is(live.filter((a) => envOf(a, c.state) === 'bad').length, 1)
  t.is(live.filter((a) => envOf(a, c.state) === 'old').length, 3)
  t.like(c.deployment().groups.fe, { placed: 1, healthy: 0, unhealthy: 1 })
})

test('a new version supersedes the running deployment; a stopped job cancels it', (t) => {
  const c = cluster()
  c.register(group('fe', 2))
  c.schedule()
  const first = c.deployment()
  c.register(group('fe', 3))
  c.schedule()
  t.like(c.state.get('deployments', first.id), { status: 'cancelled', statusDescription: 'superseded by job version 1' })
  const second = c.deployment()
  t.not(second.id, first.id)
  t.like(second.groups.fe, { desiredTotal: 3, placed: 3, desiredCanaries: 0 }, 'the two kept allocations were adopted, the third placed')
  c.apply({ type: 'JobDeregister', jobId: 'web', purge: false, time: 9, eval: newEval('stop', 'web') })
  c.schedule()
  t.like(c.state.get('deployments', second.id), { status: 'cancelled', statusDescription: 'job stopped' })
})

test('a new version that changes tasks and scales down: the extra old allocations stop, the rest roll', (t) => {
  const c = cluster()
  const withEnv = (count: number, v: string) => group('fe', count, { tasks: [{ ...group('fe', 1).tasks[0]!, env: { V: v } }] })
  c.register(withEnv(3, 'old'))
  c.schedule()
  c.clients()
  c.register(withEnv(2, 'new'))
  c.schedule()
  const stopped = c.state.allocsOfJob('web').filter((a) => a.desiredStatus === 'stop').map((a) => [a.name, a.desiredDescription]).sort()
  t.deepEqual(stopped, [['web.fe[0]', 'updated to job version 1'], ['web.fe[2]', 'scaled down']])
  t.is(c.live().length, 2, 'the replacement and the old one waiting')
  for (let i = 0; i < 3; i++) {
    c.clients()
    c.schedule()
  }
  c.clients()
  t.is(c.live().length, 2)
  t.true(c.live().every((a) => envOf(a, c.state) === 'new' && a.deploymentStatus?.healthy === true))
  t.like(c.deployment().groups.fe, { desiredTotal: 2, healthy: 2 })
})

/** mulberry32: a small seeded generator, so every run checks the same cases. */
function rng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let x = Math.imul(a ^ (a >>> 15), 1 | a)
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

test('property: random counts, max_parallel, canaries and scale changes: never more than count + canaries live, never fewer than count − max_parallel healthy, always finishing on the new version', (t) => {
  for (let seed = 1; seed <= 60; seed++) {
    const r = rng(seed)
    const int = (lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1))
    const before = int(1, 6)
    const count = r() < 0.3 ? int(1, 6) : before
    const maxParallel = int(1, 3)
    const canary = r() < 0.4 ? int(1, 2) : 0
    const where = `seed ${seed} (count ${before}→${count}, max_parallel ${maxParallel}, canary ${canary})`
    const c = cluster()
    const make = (n: number, v: string) => group('fe', n, { update: { ...defaultUpdateStrategy(), maxParallel, canary }, tasks: [{ ...group('fe', 1).tasks[0]!, env: { V: v } }] })
    c.register(make(before, 'old'))
    c.schedule()
    c.clients()
    c.register(make(count, 'new'))
    let steps = 0
    let promoted = false
    const done = () => c.live().length === count && c.live().every((a) => envOf(a, c.state) === 'new' && a.deploymentStatus?.healthy === true)
    while (!done()) {
      if (++steps > 40) {
        t.fail(`${where}: the rollout did not finish`)
        break
      }
      c.schedule()
      const live = c.live()
      const canaries = promoted ? 0 : live.filter((a) => a.deploymentStatus?.canary === true).length
      if (canaries > canary) t.fail(`${where} step ${steps}: ${canaries} canaries`)
      if (live.length > Math.max(before, count) + canary) t.fail(`${where} step ${steps}: ${live.length} live`)
      const healthy = live.filter((a) => a.deploymentStatus?.healthy === true).length
      if (healthy < Math.min(before, count) - maxParallel) t.fail(`${where} step ${steps}: ${healthy} healthy`)
      c.clients()
      const d = c.deployment()
      if (!promoted && d.groups.fe!.desiredCanaries > 0 && d.groups.fe!.placedCanaries.length >= d.groups.fe!.desiredCanaries) {
        // The user promotes once the canaries are healthy; until then nothing old stopped.
        t.is(c.state.allocsOfJob('web').filter((a) => a.desiredStatus === 'stop' && envOf(a, c.state) === 'old').length, Math.max(0, before - count), `${where}: only scaled-down old allocations stopped before promotion`)
        c.apply({ type: 'DeploymentPromote', deploymentId: d.id, time: 1, eval: newEval(`p${seed}`, 'web') })
        promoted = true
      }
    }
    const d = c.deployment()
    t.is(d.jobVersion, 1, where)
    t.is(d.groups.fe!.healthy >= count, true, where)
  }
})
