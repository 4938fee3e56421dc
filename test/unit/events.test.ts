// The event broker: topics from applied commands, filters, resume from an index,
// and the stream endpoint's topic parsing.
import test from 'ava'
import { EventEmitter } from 'node:events'
import { EventBroker, type StreamEvent } from '../../src/agent/events.ts'
import { parseTopics } from '../../src/api/events.ts'
import type { Fsm } from '../../src/fsm/fsm.ts'
import { StateStore } from '../../src/fsm/state.ts'

function fakeFsm() {
  const emitter = new EventEmitter() as EventEmitter & { state: StateStore }
  emitter.state = new StateStore()
  return emitter
}
const inst = { service: 'web', allocId: 'a', jobId: 'j', group: 'g', nodeId: 'n', nodeName: 'n', address: '10.0.0.1', port: 1, tags: [], healthy: true, status: 'passing' as const }

test('service events from applied commands; filters by topic and key; resume after an index', (t) => {
  const fsm = fakeFsm()
  const broker = new EventBroker(fsm as unknown as Fsm)
  const all: StreamEvent[] = []
  const web: StreamEvent[] = []
  broker.subscribe([{ topic: '*', key: '*' }], (e) => all.push(e))
  const stop = broker.subscribe([{ topic: 'service', key: 'web' }], (e) => web.push(e))
  fsm.emit('applied', { index: 5, command: {}, changes: [], services: [{ service: 'web', index: 5, instances: [inst] }, { service: 'db', index: 5, instances: [] }] })
  t.deepEqual(all.map((e) => [e.topic, e.type, e.key, e.index]), [['service', 'ServiceChanged', 'web', 5], ['service', 'ServiceChanged', 'db', 5]])
  t.deepEqual(web.map((e) => e.payload), [{ service: 'web', instances: [inst] }])
  stop()
  fsm.emit('applied', { index: 6, command: {}, changes: [], services: [{ service: 'web', index: 6, instances: [] }] })
  t.is(web.length, 1, 'unsubscribed')
  // A late subscriber resumes from an index: buffered events after it, then live ones.
  const late: StreamEvent[] = []
  broker.subscribe([{ topic: 'service', key: '*' }], (e) => late.push(e), 5)
  t.deepEqual(late.map((e) => [e.key, e.index]), [['web', 6]])
  // More topics register; other loops publish.
  broker.registerTopic('scaling', { applied: () => [] })
  t.deepEqual(broker.topics, ['scaling', 'service'])
  broker.publish({ topic: 'scaling', type: 'ScaleUp', key: 'j', index: 7, payload: {} })
  t.is(all.at(-1)!.topic, 'scaling')
})

test('topic parameters: topic, topic:key, all by default; unknown topics and empty keys refused', (t) => {
  const q = (s: string) => new URLSearchParams(s)
  t.deepEqual(parseTopics(q(''), ['service']), [{ topic: '*', key: '*' }])
  t.deepEqual(parseTopics(q('topic=service&topic=service:web'), ['service']), [{ topic: 'service', key: '*' }, { topic: 'service', key: 'web' }])
  t.throws(() => parseTopics(q('topic=jobs'), ['service']), { message: /unknown topic "jobs" \(topics: service/ })
  t.throws(() => parseTopics(q('topic=service:'), ['service']), { message: /empty key/ })
})
