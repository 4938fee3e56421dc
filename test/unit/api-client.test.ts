// ApiClient.postText: job run's submission over a plain HTTP/1.1 connection of
// its own (no node:http); answers as the agent sends them, and as others might.
import test from 'ava'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { createServer as createTcpServer, type AddressInfo } from 'node:net'
import { ApiClient, ApiError } from '../../src/api/client.ts'

async function serve(handler: (req: IncomingMessage, body: string, res: ServerResponse) => void): Promise<{ address: string; close: () => void }> {
  const server = createServer((req, res) => {
    let body = ''
    req.setEncoding('utf8').on('data', (c: string) => (body += c)).on('end', () => handler(req, body, res))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { address: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => server.close() }
}

test('postText sends the text as it is and parses a JSON answer', async (t) => {
  let seen: { method?: string; url?: string; type?: string; body?: string } = {}
  const s = await serve((req, body, res) => {
    seen = { method: req.method, url: req.url, type: req.headers['content-type'], body }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ jobId: 'web', ünïcode: 'ö' }))
  })
  t.teardown(s.close)
  const text = '{"job": {"web": {}},\n "note": "kept as written: ö"}'
  const answer = await new ApiClient(s.address).postText<{ jobId: string; ünïcode: string }>('/v1/jobs?check_index=0', text)
  t.deepEqual(answer, { jobId: 'web', ünïcode: 'ö' })
  t.deepEqual(seen, { method: 'POST', url: '/v1/jobs?check_index=0', type: 'application/json', body: text })
})

test('postText reads a chunked answer', async (t) => {
  const s = await serve((_req, _body, res) => {
    res.writeHead(200, { 'content-type': 'application/json' })
    res.write('{"a": ')
    setTimeout(() => res.end('[1, 2, 3]}'), 20)
  })
  t.teardown(s.close)
  t.deepEqual(await new ApiClient(s.address).postText('/x', '{}'), { a: [1, 2, 3] })
})

test('postText turns an error answer into the same ApiError as other requests', async (t) => {
  const s = await serve((_req, _body, res) => {
    res.writeHead(400, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ error: 'job.web.count: must be an integer', field: 'job.web.count', errors: [{ field: 'job.web.count', message: 'must be an integer' }] }))
  })
  t.teardown(s.close)
  const client = new ApiClient(s.address)
  const viaText = await t.throwsAsync(client.postText('/v1/jobs', '{}'), { instanceOf: ApiError })
  const viaJson = await t.throwsAsync(client.post('/v1/jobs', {}), { instanceOf: ApiError })
  for (const e of [viaText, viaJson]) {
    t.is(e.status, 400)
    t.is(e.field, 'job.web.count')
    t.deepEqual(e.errors, [{ field: 'job.web.count', message: 'must be an integer' }])
  }
})

test('postText names the agent it cannot reach, and a connection cut before a whole answer', async (t) => {
  const closed = createTcpServer()
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve))
  const port = (closed.address() as AddressInfo).port
  await new Promise((resolve) => closed.close(resolve))
  const refused = await t.throwsAsync(new ApiClient(`http://127.0.0.1:${port}`).postText('/v1/jobs', '{}'), { instanceOf: ApiError })
  t.is(refused.status, 0)
  t.regex(refused.message, /cannot reach the Shoal agent at http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\)/)

  // Headers promise 100 bytes, the connection ends after 2.
  const cut = createTcpServer((socket) => socket.once('data', () => socket.end('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{}')))
  await new Promise<void>((resolve) => cut.listen(0, '127.0.0.1', resolve))
  t.teardown(() => cut.close())
  const short = await t.throwsAsync(new ApiClient(`http://127.0.0.1:${(cut.address() as AddressInfo).port}`).postText('/v1/jobs', '{}'), { instanceOf: ApiError })
  t.regex(short.message, /cannot reach the Shoal agent .*\(ECONNRESET\)/)
})
