// Following a deployment (the CLI's live progress) against a scripted API:
// on a terminal the table is redrawn in place; elsewhere one timestamped line
// per change; the verdict and outcome at the end.
import test from 'ava'
import type { ApiClient } from '../../src/api/client.ts'
import { DEPLOYMENT_EXIT, followDeployment } from '../../src/cli/monitor.ts'
import type { Deployment, DeploymentGroup } from '../../src/structs/index.ts'

const g = (over: Partial<DeploymentGroup>): DeploymentGroup => ({
  desiredTotal: 3, desiredCanaries: 0, placedCanaries: [], promoted: false, autoRevert: false, autoPromote: false,
  progressDeadlineMs: 600_000, placed: 0, healthy: 0, unhealthy: 0, requireProgressBy: 1_700_000_600_000, ...over,
})
const d = (status: Deployment['status'], web: Partial<DeploymentGroup>, statusDescription = ''): Deployment => ({
  id: 'abcdef0123456789', jobId: 'web', jobVersion: 4, jobCreateIndex: 1, status, statusDescription, groups: { web: g(web) },
  createTime: 0, modifyTime: 0, createIndex: 1, modifyIndex: 1,
})

function scripted(states: Deployment[]): ApiClient {
  let i = 0
  return { get: async () => states[Math.min(i++, states.length - 1)] } as unknown as ApiClient
}

const states = [
  d('running', { placed: 1 }),
  d('running', { placed: 1 }),
  d('running', { placed: 2, healthy: 1 }),
  d('successful', { placed: 3, healthy: 3 }, 'Deployment completed successfully'),
]
const now = () => 1_700_000_000_000

test('on a terminal: the table is redrawn in place (cursor up, clear), then the verdict', async (t) => {
  let out = ''
  const r = await followDeployment(scripted(states), 'abcdef01', { tty: true, write: (s) => (out += s), now, pollMs: 1 })
  t.is(r.outcome, 'successful')
  t.is(DEPLOYMENT_EXIT[r.outcome], 0)
  const frames = out.split('\x1b[3A\x1b[J')
  t.is(frames.length, 4, 'drawn 4 times, the last 3 over the one before')
  t.regex(frames[0]!, /^==> Monitoring deployment "abcdef01" of job "web" version 4\n/)
  t.regex(frames[0]!, /Group\s+Desired\s+Placed\s+Healthy\s+Unhealthy\s+Progress Deadline\nweb\s+3\s+1\s+0\s+0\s+2023-11-14T22:23:20Z \(10m left\)\nStatus: running\n/)
  t.regex(frames[3]!, /web\s+3\s+3\s+3\s+0/)
  t.regex(frames[3]!, /Status: successful - Deployment completed successfully\n==> Deployment "abcdef01" successful: Deployment completed successfully\n$/)
  t.false(out.includes('2023-11-14T22:13:20Z Deployment'), 'no timestamped lines on a terminal')
})

test('off a terminal: a timestamped line per change, never a cursor move', async (t) => {
  let out = ''
  const r = await followDeployment(scripted(states), 'abcdef01', { tty: false, write: (s) => (out += s), now, pollMs: 1 })
  t.is(r.outcome, 'successful')
  t.false(out.includes('\x1b['))
  t.deepEqual(out.trim().split('\n'), [
    '==> 2023-11-14T22:13:20Z Monitoring deployment "abcdef01" of job "web" version 4',
    '2023-11-14T22:13:20Z Deployment "abcdef01" running: web 1/3 placed, 0 healthy, 0 unhealthy',
    '2023-11-14T22:13:20Z Deployment "abcdef01" running: web 2/3 placed, 1 healthy, 0 unhealthy',
    '2023-11-14T22:13:20Z Deployment "abcdef01" successful: web 3/3 placed, 3 healthy, 0 unhealthy',
    '==> 2023-11-14T22:13:20Z Deployment "abcdef01" successful: Deployment completed successfully',
  ])
})

test('failed deployments end with exit 1; healthy canaries awaiting a manual promotion end with 3', async (t) => {
  const failed = await followDeployment(scripted([d('failed', { unhealthy: 1 }, 'Failed: 1 allocation(s) of group "web" unhealthy')]), 'x', { tty: false, write: () => undefined, now, pollMs: 1 })
  t.is(DEPLOYMENT_EXIT[failed.outcome], 1)
  let out = ''
  const canary = { ...d('running', { desiredCanaries: 1, placedCanaries: ['c1'], placed: 1, healthy: 1 }), allocations: [{ id: 'c1', healthy: true }] }
  const waiting = await followDeployment(scripted([canary]), 'x', { tty: false, write: (s) => (out += s), now, pollMs: 1 })
  t.is(waiting.outcome, 'awaiting-promotion')
  t.is(DEPLOYMENT_EXIT[waiting.outcome], 3)
  t.regex(out, /canaries are healthy and await promotion: shoal deployment promote abcdef01/)
  t.regex(out, /web 1\/3 placed, 1 healthy, 0 unhealthy, canaries 1\/1/)
})
