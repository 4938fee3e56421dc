import test from 'ava'
import { EventEmitter } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Client } from '../../src/agent/client.ts'
import type { AppliedEvent, Fsm } from '../../src/fsm/fsm.ts'
import { validateJob } from '../../src/jobspec/index.ts'
import type { Driver, ExitResult, RecoveredTask, TaskHandle } from '../../src/runtime/driver.ts'
import type { Allocation, Job } from '../../src/structs/index.ts'

// Seam: the client's view of the state and of one driver, for an agent restarted
// after kill -9 that finds a task still running.
const ALLOC = 'a1b2c3d4-0000'

function allocation(extra: Partial<Allocation> = {}): Allocation {
  return {
    id: ALLOC, name: 'j.g[0]', jobId: 'j', jobVersion: 0, group: 'g', index: 0, nodeId: 'n5', evalId: 'e',
    desiredStatus: 'run', desiredDescription: '', clientStatus: 'running', clientDescription: '', taskStates: {},
    resources: { cpu: 100, memoryMB: 100, ports: [] }, rescheduleCount: 0, createIndex: 1, modifyIndex: 1, createTime: 0, modifyTime: 0,
    ...extra,
  }
}

function jobVersion(): Job {
  const r = validateJob({ job: { j: { group: { g: { task: { sleep: { driver: 'exec', config: { command: '/bin/sleep', args: ['1000'] } } } } } } } })
  if (!r.ok) throw new Error(JSON.stringify(r.errors))
  return { ...r.spec, version: 0, stop: false, submitTime: 0, createIndex: 1, modifyIndex: 1 }
}

interface Options {
  /** The allocation in the state when the client starts (undefined: not known yet). */
  alloc?: Allocation
  /** What the state says about it once the drivers answered (the leader moved on meanwhile). */
  duringRecovery?: (a: Allocation | undefined) => Allocation | undefined
  stateCurrent?: () => Promise<void>
}

async function harness(t: { teardown: (f: () => Promise<void>) => void }, o: Options) {
  const handle: TaskHandle = { driver: 'exec', id: '4242', allocId: ALLOC, taskName: 'sleep', startedAt: 1 }
  let alloc = o.alloc
  const job = jobVersion()
  const fsm = Object.assign(new EventEmitter(), {
    state: {
      get: (table: string, id: string) => (table === 'allocs' && id === ALLOC ? alloc : table === 'jobVersions' && id.startsWith('j') ? job : undefined),
      allocsOfNode: (nodeId: string) => (alloc && nodeId === alloc.nodeId ? [alloc] : []),
    },
  }) as unknown as Fsm
  const stopped: string[] = []
  const destroyed: string[] = []
  const networksDestroyed: string[] = []
  const never = new Promise<ExitResult>(() => undefined)
  const driver = {
    name: 'exec',
    recover: async (): Promise<RecoveredTask[]> => [{ allocId: handle.allocId, taskName: handle.taskName, handle, running: true }],
    recoverNetworks: async () => {
      if (o.duringRecovery) alloc = o.duringRecovery(alloc)
      return [ALLOC]
    },
    destroyNetwork: async (id: string) => void networksDestroyed.push(id),
    stop: async (h: TaskHandle) => void stopped.push(h.id),
    destroy: async (h: TaskHandle) => void destroyed.push(h.id),
    wait: () => never,
    stats: async () => ({ cpuPercent: 0, memoryRssBytes: 0, timestamp: Date.now() }),
  } as unknown as Driver
  const logs: string[] = []
  const dir = await mkdtemp(join(tmpdir(), 'shoal-client-'))
  const client = new Client({
    fsm, nodeId: 'n5', dataDir: dir, drivers: [driver],
    writer: { updateAllocs: async () => undefined },
    log: { info: (m) => logs.push(m), warn: (m) => logs.push(m) },
    ...(o.stateCurrent ? { stateCurrent: o.stateCurrent } : {}),
  })
  t.teardown(async () => {
    await client.close()
    await rm(dir, { recursive: true, force: true })
  })
  /** The state applies a change to the allocation. */
  const learn = (a: Allocation) => {
    alloc = a
    fsm.emit('applied', { index: 2, command: { type: 'Bogus' }, changes: [{ table: 'allocs', key: a.id, value: a }], services: [] } as unknown as AppliedEvent)
  }
  return { client, stopped, destroyed, networksDestroyed, logs, learn }
}

const settle = () => new Promise((r) => setTimeout(r, 20))

function gate() {
  let open!: () => void
  const promise = new Promise<void>((r) => (open = r))
  return { wait: () => promise, open }
}

test('a recovered task whose allocation was declared lost during recovery is stopped and removed', async (t) => {
  const h = await harness(t, { alloc: allocation(), duringRecovery: (a) => ({ ...a!, desiredStatus: 'stop', clientStatus: 'lost' }) })
  await h.client.start()
  t.deepEqual(h.stopped, ['4242'])
  t.deepEqual(h.destroyed, ['4242'])
  t.true(h.logs.some((l) => /removing leftover task sleep of allocation a1b2c3d4: not wanted any more/.test(l)), h.logs.join('\n'))
})

test('a task of an allocation the state does not know yet keeps running (with its network) until the state is current, then goes', async (t) => {
  const current = gate()
  const h = await harness(t, { stateCurrent: current.wait })
  await h.client.start()
  await settle()
  t.deepEqual(h.stopped, [], 'kept while the state may lag behind the cluster')
  t.deepEqual(h.networksDestroyed, [])
  t.true(h.logs.some((l) => /keeping 1 allocation\(s\) the state does not know yet/.test(l)), h.logs.join('\n'))
  current.open()
  await settle()
  t.deepEqual(h.stopped, ['4242'])
  t.deepEqual(h.destroyed, ['4242'])
  t.deepEqual(h.networksDestroyed, [ALLOC])
})

test('without a way to know the state is current, such a task is removed at start', async (t) => {
  const h = await harness(t, {})
  await h.client.start()
  t.deepEqual(h.stopped, ['4242'])
  t.deepEqual(h.networksDestroyed, [ALLOC])
})

test('the state catches up with the allocation wanting it to run: its runner takes the task over, nothing is stopped', async (t) => {
  const current = gate()
  const h = await harness(t, { stateCurrent: current.wait })
  await h.client.start()
  h.learn(allocation())
  await settle()
  t.truthy(h.client.runner(ALLOC), 'a runner re-attached')
  current.open()
  await settle()
  t.deepEqual(h.stopped, [], 'the adopted task is not a leftover')
  t.deepEqual(h.networksDestroyed, [])
})

test('the state catches up with the allocation stopped: the task goes at once', async (t) => {
  const h = await harness(t, { stateCurrent: () => new Promise(() => undefined) })
  await h.client.start()
  h.learn(allocation({ desiredStatus: 'stop', clientStatus: 'lost' }))
  await settle()
  t.deepEqual(h.stopped, ['4242'])
  t.is(h.client.runner(ALLOC), undefined)
})
