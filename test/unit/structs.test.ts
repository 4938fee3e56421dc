import test from 'ava'
import { groupResources, type TaskGroup } from '../../src/structs/index.ts'

test('groupResources sums the tasks of a group', (t) => {
  const task = (name: string, cpu: number, memoryMB: number) => ({
    name, driver: 'exec' as const, config: { command: '/bin/true', args: [] },
    env: {}, resources: { cpu, memoryMB }, killTimeoutMs: 5000,
  })
  const group: TaskGroup = {
    name: 'g', count: 1, ports: [], restart: { attempts: 0, intervalMs: 0, delayMs: 0, mode: 'fail' },
    tasks: [task('a', 100, 32), task('b', 250, 64)],
  }
  t.deepEqual(groupResources(group), { cpu: 350, memoryMB: 96 })
})
