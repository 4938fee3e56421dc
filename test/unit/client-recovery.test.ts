import test from 'ava'
import { EventEmitter } from 'node:events'
import { Client } from '../../src/agent/client.ts'
import type { Fsm } from '../../src/fsm/fsm.ts'
import type { Driver, RecoveredTask, TaskHandle } from '../../src/runtime/driver.ts'
import type { Allocation } from '../../src/structs/index.ts'

// Seam: the client's view of the state and of one driver. The race under test: an agent
// restarted after kill -9 finds a task still running, and the state declares its
// allocation lost (replaced elsewhere) before the client starts following the state.
function harness(allocChangesDuringRecovery: (a: Allocation) => Allocation) {
  const handle: TaskHandle = { driver: 'exec', id: '4242', allocId: 'a1b2c3d4-0000', taskName: 'sleep', startedAt: 1 }
  let alloc = { id: handle.allocId, nodeId: 'n5', jobId: 'j', jobVersion: 0, desiredStatus: 'run', clientStatus: 'running', taskStates: {} } as unknown as Allocation
  const fsm = Object.assign(new EventEmitter(), {
    state: {
      get: (table: string, id: string) => (table === 'allocs' && id === alloc.id ? alloc : undefined),
      allocsOfNode: (nodeId: string) => (nodeId === alloc.nodeId ? [alloc] : []),
    },
  }) as unknown as Fsm
  const stopped: string[] = []
  const destroyed: string[] = []
  const driver = {
    name: 'exec',
    recover: async (): Promise<RecoveredTask[]> => [{ allocId: handle.allocId, taskName: handle.taskName, handle, running: true }],
    recoverNetworks: async () => {
      alloc = allocChangesDuringRecovery(alloc)
      return []
    },
    destroyNetwork: async () => undefined,
    stop: async (h: TaskHandle) => void stopped.push(h.id),
    destroy: async (h: TaskHandle) => void destroyed.push(h.id),
  } as unknown as Driver
  const logs: string[] = []
  const client = new Client({
    fsm, nodeId: 'n5', dataDir: '/nonexistent', drivers: [driver],
    writer: { updateAllocs: async () => undefined },
    log: { info: (m) => logs.push(m), warn: (m) => logs.push(m) },
  })
  return { client, stopped, destroyed, logs }
}

test('a recovered task whose allocation was declared lost during recovery is stopped and removed', async (t) => {
  const h = harness((a) => ({ ...a, desiredStatus: 'stop', clientStatus: 'lost' }))
  await h.client.start()
  t.deepEqual(h.stopped, ['4242'])
  t.deepEqual(h.destroyed, ['4242'])
  t.true(h.logs.some((l) => /removing leftover task sleep of allocation a1b2c3d4: not wanted any more/.test(l)), h.logs.join('\n'))
  await h.client.close()
})
