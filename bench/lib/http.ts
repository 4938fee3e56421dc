// Minimal keep-alive HTTP client on node:http (undici is not a dependency).
import http from 'node:http'

export interface Reply {
  status: number
  body: string
}

/** A keep-alive connection pool; `sockets` should be at least the number of concurrent clients. */
export function keepAliveAgent(sockets: number): http.Agent {
  return new http.Agent({ keepAlive: true, maxSockets: sockets, maxFreeSockets: sockets })
}

/** One request; rejects on network errors and after `timeoutMs`. Non-2xx statuses resolve. */
export function request(agent: http.Agent, method: string, url: string, body?: string, timeoutMs = 10_000): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : Buffer.from(body)
    const req = http.request(url, {
      method, agent,
      headers: payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {},
    }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        clearTimeout(timer)
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() })
      })
      res.on('error', reject)
    })
    const timer = setTimeout(() => req.destroy(new Error(`${method} ${url}: no answer within ${timeoutMs} ms`)), timeoutMs)
    req.on('error', (err) => {
      clearTimeout(timer)
      reject(err)
    })
    req.end(payload)
  })
}

/** GET or POST returning parsed JSON; throws on non-2xx. */
export async function json<T>(agent: http.Agent, method: string, url: string, body?: unknown, timeoutMs = 2_000): Promise<T> {
  const res = await request(agent, method, url, body === undefined ? undefined : JSON.stringify(body), timeoutMs)
  if (res.status < 200 || res.status > 299) throw new Error(`${method} ${url}: ${res.status} ${res.body.slice(0, 200)}`)
  return JSON.parse(res.body) as T
}
