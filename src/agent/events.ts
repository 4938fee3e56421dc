// The event stream: changes of the cluster state as topic events, for clients
// that follow the cluster without polling (GET /v1/event/stream). Topics turn
// applied FSM commands into events; more topics register with registerTopic,
// and leader-side loops may publish() events of their own.
import type { AppliedEvent, Fsm } from '../fsm/fsm.ts'
import type { StateStore } from '../fsm/state.ts'

export interface StreamEvent {
  topic: string
  /** What happened, e.g. "ServiceChanged". */
  type: string
  /** What it happened to (a service name, a job id); filters match on it. */
  key: string
  /** Raft index of the change. */
  index: number
  payload: unknown
}

export interface TopicSource {
  /** Events of one applied command. */
  applied(e: AppliedEvent, state: StateStore): StreamEvent[]
  /** Events describing everything anew after a snapshot restore. */
  restored?(index: number, state: StateStore): StreamEvent[]
}

/** `topic` or `topic:key`; "*" matches every topic or key. */
export interface TopicFilter {
  topic: string
  key: string
}

export type Subscriber = (e: StreamEvent) => void

const BUFFER_SIZE = 4096

export const serviceTopic: TopicSource = {
  applied: (e) => e.services.map((c) => ({
    topic: 'service', type: 'ServiceChanged', key: c.service, index: c.index, payload: { service: c.service, instances: c.instances },
  })),
  restored: (index, state) => state.services().map((s) => ({
    topic: 'service', type: 'ServiceChanged', key: s.name, index, payload: { service: s.name, instances: state.serviceInstances(s.name) },
  })),
}

/** Each decision recorded in a group's scaling history (changes and, rate-limited, unchanged ones); keyed by job id. */
export const scalingTopic: TopicSource = {
  applied: (e) => e.changes.flatMap((c) => {
    if (c.table !== 'scalingEvents' || c.value === null) return []
    const event = c.value.events.at(-1)
    if (!event) return []
    return [{ topic: 'scaling', type: 'ScalingEvent', key: c.value.jobId, index: e.index, payload: { jobId: c.value.jobId, group: c.value.group, event } }]
  }),
}

export function matches(filters: readonly TopicFilter[], e: StreamEvent): boolean {
  return filters.some((f) => (f.topic === '*' || f.topic === e.topic) && (f.key === '*' || f.key === e.key))
}

export class EventBroker {
  readonly #topics = new Map<string, TopicSource>()
  readonly #subscribers = new Set<Subscriber>()
  /** The most recent events, oldest first, so a client can resume from an index. */
  #buffer: StreamEvent[] = []

  constructor(fsm: Fsm) {
    fsm.on('applied', (e) => {
      for (const source of this.#topics.values()) for (const ev of source.applied(e, fsm.state)) this.publish(ev)
    })
    fsm.on('restored', (index) => {
      for (const source of this.#topics.values()) for (const ev of source.restored?.(index, fsm.state) ?? []) this.publish(ev)
    })
    this.registerTopic('service', serviceTopic)
    this.registerTopic('scaling', scalingTopic)
  }

  registerTopic(name: string, source: TopicSource): void {
    this.#topics.set(name, source)
  }

  get topics(): string[] {
    return [...this.#topics.keys()].sort()
  }

  publish(e: StreamEvent): void {
    this.#buffer.push(e)
    if (this.#buffer.length > BUFFER_SIZE * 2) this.#buffer = this.#buffer.slice(-BUFFER_SIZE)
    for (const s of this.#subscribers) s(e)
  }

  /**
   * Calls `subscriber` with every matching event from now on, after the buffered
   * ones with an index above `after` (when given). Returns the unsubscribe function.
   */
  subscribe(filters: readonly TopicFilter[], subscriber: Subscriber, after?: number): () => void {
    if (after !== undefined) for (const e of this.#buffer) if (e.index > after && matches(filters, e)) subscriber(e)
    const s: Subscriber = (e) => { if (matches(filters, e)) subscriber(e) }
    this.#subscribers.add(s)
    return () => this.#subscribers.delete(s)
  }
}
