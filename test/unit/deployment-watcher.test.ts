// The deployment watcher's decisions (pure): fail on unhealthy or a passed
// progress deadline (reverting to the latest stable version), auto-promote,
// succeed when every group is done.
import test from 'ava'
import { decideDeployment, type DecisionInputs } from '../../src/agent/deployment-watcher.ts'
import type { Deployment, DeploymentGroup, Job } from '../../src/structs/index.ts'
import { group, job, spec } from './fixtures.ts'

const g = (over: Partial<DeploymentGroup> = {}): DeploymentGroup => ({
  desiredTotal: 2, desiredCanaries: 0, placedCanaries: [], promoted: false, autoRevert: false, autoPromote: false,
  progressDeadlineMs: 60_000, placed: 0, healthy: 0, unhealthy: 0, requireProgressBy: 100_000, ...over,
})
const dep = (groups: Record<string, DeploymentGroup>, over: Partial<Deployment> = {}): Deployment => ({
  id: 'd2', jobId: 'web', jobVersion: 2, jobCreateIndex: 1, status: 'running', statusDescription: '', groups,
  createTime: 0, modifyTime: 0, createIndex: 5, modifyIndex: 5, ...over,
})
const v = (version: number, count: number, stable: boolean): Job => job(spec('web', [group('fe', count)]), { version, ...(stable ? { stable } : {}) })
const versions = [v(0, 1, true), v(1, 2, true), v(2, 3, false)]
const inputs = (over: Partial<DecisionInputs> = {}): DecisionInputs => ({ versions, job: versions[2], allocHealthy: () => false, now: 50_000, ...over })

test('waits while allocations are on their way, until the progress deadline', (t) => {
  t.deepEqual(decideDeployment(dep({ fe: g({ placed: 1 }) }), inputs()), { kind: 'wait', nextCheckAt: 100_000 })
  t.deepEqual(decideDeployment(dep({ fe: g() }, { status: 'paused' }), inputs({ now: 200_000 })), { kind: 'wait' }, 'a paused deployment has no deadline')
})

test('fails on an unhealthy allocation or a passed deadline; without auto_revert nothing more', (t) => {
  t.deepEqual(decideDeployment(dep({ fe: g({ unhealthy: 1 }) }), inputs()), { kind: 'fail', description: 'Failed: 1 allocation(s) of group "fe" unhealthy' })
  t.deepEqual(decideDeployment(dep({ fe: g({ healthy: 1 }) }), inputs({ now: 100_000 })),
    { kind: 'fail', description: 'Failed: group "fe" made no progress within progress_deadline 1m' })
})

test('auto_revert goes back to the latest stable version before it with a different spec', (t) => {
  const d = decideDeployment(dep({ fe: g({ unhealthy: 1, autoRevert: true }) }), inputs())
  t.like(d, { kind: 'fail', description: 'Failed: 1 allocation(s) of group "fe" unhealthy; rolling back to job version 1', revert: { version: 1 } })
  const same = [v(0, 1, true), v(1, 3, true), v(2, 3, false)]
  t.like(decideDeployment(dep({ fe: g({ unhealthy: 1, autoRevert: true }) }), inputs({ versions: same, job: same[2] })), { revert: { version: 0 } }, 'a stable version equal to the current one is skipped')
  const none = [v(0, 1, false), v(1, 2, false), v(2, 3, false)]
  t.deepEqual(decideDeployment(dep({ fe: g({ unhealthy: 1, autoRevert: true }) }), inputs({ versions: none, job: none[2] })),
    { kind: 'fail', description: 'Failed: 1 allocation(s) of group "fe" unhealthy; no stable job version to revert to' })
})

test('canaries: auto_promote once all are healthy; a manual promotion is waited for without a deadline', (t) => {
  const canary = g({ desiredCanaries: 1, placedCanaries: ['c1'], placed: 1 })
  t.deepEqual(decideDeployment(dep({ fe: { ...canary, autoPromote: true } }), inputs()), { kind: 'wait', nextCheckAt: 100_000 })
  t.deepEqual(decideDeployment(dep({ fe: { ...canary, autoPromote: true, healthy: 1 } }), inputs({ allocHealthy: (id) => id === 'c1' })), { kind: 'promote' })
  t.deepEqual(decideDeployment(dep({ fe: { ...canary, healthy: 1 } }), inputs({ allocHealthy: () => true, now: 500_000 })), { kind: 'wait' })
})

test('succeeds when every group is promoted (if it has canaries) and has count healthy', (t) => {
  t.deepEqual(decideDeployment(dep({ fe: g({ placed: 2, healthy: 2 }), be: g({ desiredTotal: 0 }) }), inputs()), { kind: 'succeed' })
  t.deepEqual(decideDeployment(dep({ fe: g({ placed: 3, healthy: 3, desiredCanaries: 1, placedCanaries: ['c'], promoted: true }) }), inputs()), { kind: 'succeed' })
  t.like(decideDeployment(dep({ fe: g({ placed: 2, healthy: 2, desiredCanaries: 1, placedCanaries: ['c'] }) }), inputs()), { kind: 'wait' })
})
