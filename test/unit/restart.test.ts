import test from 'ava'
import { RestartTracker } from '../../src/runtime/restart.ts'

const policy = { attempts: 2, intervalMs: 60_000, delayMs: 1_000, mode: 'fail' as const }

test('restarts up to attempts within the interval, then fails', (t) => {
  const r = new RestartTracker(policy, 'service', 0)
  t.like(r.onExit({ exitCode: 1 }, 1_000), { action: 'restart', delayMs: 1_000 })
  t.like(r.onExit({ exitCode: 137 }, 2_000), { action: 'restart', delayMs: 1_000 })
  const last = r.onExit({ exitCode: 1 }, 3_000)
  t.is(last.action, 'fail')
  t.regex(last.reason, /exceeded 2 restart attempt/)
})

test('the count starts again once the interval has passed', (t) => {
  const r = new RestartTracker(policy, 'service', 0)
  r.onExit({ exitCode: 1 }, 1_000)
  r.onExit({ exitCode: 1 }, 2_000)
  t.is(r.onExit({ exitCode: 1 }, 61_000).action, 'restart')
})

test('mode delay waits for the end of the interval instead of failing', (t) => {
  const r = new RestartTracker({ ...policy, mode: 'delay' }, 'service', 0)
  r.onExit({ exitCode: 1 }, 1_000)
  r.onExit({ exitCode: 1 }, 2_000)
  t.like(r.onExit({ exitCode: 1 }, 10_000), { action: 'restart', delayMs: 50_000 })
})

test('a batch task that exits 0 is complete; a service task is restarted', (t) => {
  t.is(new RestartTracker(policy, 'batch', 0).onExit({ exitCode: 0 }, 1).action, 'complete')
  t.is(new RestartTracker(policy, 'service', 0).onExit({ exitCode: 0 }, 1).action, 'restart')
})

test('an unrecoverable start error fails at once', (t) => {
  t.is(new RestartTracker(policy, 'service', 0).onExit({ exitCode: -1, unrecoverable: true }, 1).action, 'fail')
})
