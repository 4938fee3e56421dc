// GET /v1/event/stream?topic=service[:key]&index=N: cluster changes as
// newline-delimited JSON, one event per line; "{}" lines keep idle streams alive.
import type { EventBroker, TopicFilter } from '../agent/events.ts'
import { HttpError, type Request } from './http.ts'

const HEARTBEAT_MS = 10_000

export function parseTopics(query: URLSearchParams, known: readonly string[]): TopicFilter[] {
  const raw = query.getAll('topic')
  if (raw.length === 0) return [{ topic: '*', key: '*' }]
  return raw.map((t) => {
    const colon = t.indexOf(':')
    const topic = colon < 0 ? t : t.slice(0, colon)
    const key = colon < 0 ? '*' : t.slice(colon + 1)
    if (topic !== '*' && !known.includes(topic)) {
      throw new HttpError(400, `topic: unknown topic ${JSON.stringify(topic)} (topics: ${known.join(', ')}; "topic:key" filters on a key)`, 'topic')
    }
    if (key === '') throw new HttpError(400, `topic: ${JSON.stringify(t)} has an empty key; use "${topic}" or "${topic}:*"`, 'topic')
    return { topic, key }
  })
}

export async function eventStream(req: Request, broker: EventBroker): Promise<undefined> {
  const filters = parseTopics(req.query, broker.topics)
  const rawIndex = req.query.get('index')
  const after = rawIndex === null ? undefined : Number(rawIndex)
  if (after !== undefined && (!Number.isInteger(after) || after < 0)) throw new HttpError(400, `index: must be a non-negative integer (got "${rawIndex}")`, 'index')
  const res = req.res
  res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' })
  res.flushHeaders()
  const write = (o: object) => {
    if (!res.writableEnded) res.write(JSON.stringify(o) + '\n')
  }
  const unsubscribe = broker.subscribe(filters, write, after)
  const heartbeat = setInterval(() => write({}), HEARTBEAT_MS)
  req.raw.once('close', () => {
    clearInterval(heartbeat)
    unsubscribe()
  })
  res.once('close', () => {
    clearInterval(heartbeat)
    unsubscribe()
  })
  return undefined
}
