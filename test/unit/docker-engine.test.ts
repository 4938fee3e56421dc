// The Docker Engine API client (src/runtime/docker-engine.ts) at its pure seams, and over
// a fake engine on a unix socket: answers, errors, the pull stream, the hijacked exec.
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import test, { type ExecutionContext } from 'ava'
import {
  DockerEngine,
  DockerEngineError,
  PullProgress,
  decodePathStat,
  errorFromResponse,
  queryString,
  splitImageReference,
} from '../../src/runtime/docker-engine.ts'
import { demuxStream } from '../../src/runtime/docker-logs.ts'
import { DockerDriver } from '../../src/runtime/docker.ts'
import { DriverError } from '../../src/runtime/driver.ts'
import { dockerSpec } from '../helpers/tasks.ts'

/** One multiplexed frame: [stream, 0, 0, 0, size BE] + payload. */
function frame(stream: number, text: string): Buffer {
  const payload = Buffer.from(text)
  const header = Buffer.alloc(8)
  header[0] = stream
  header.writeUInt32BE(payload.length, 4)
  return Buffer.concat([header, payload])
}

// ---- pure seams ----

test('errorFromResponse: the engine JSON message, else the body text, else the status', (t) => {
  const json = errorFromResponse(500, Buffer.from('{"message":"driver failed: Bind for 0.0.0.0:80 failed: port is already allocated"}\n'))
  t.true(json instanceof DockerEngineError)
  t.is(json.statusCode, 500)
  t.is(json.message, 'driver failed: Bind for 0.0.0.0:80 failed: port is already allocated')
  const text = errorFromResponse(400, Buffer.from('page not found\n'))
  t.is(text.message, 'page not found')
  t.is(errorFromResponse(502, Buffer.from('{not json')).message, '{not json')
  t.is(errorFromResponse(404, Buffer.from('{"other":1}')).message, '{"other":1}')
  const empty = errorFromResponse(304, Buffer.alloc(0))
  t.is(empty.statusCode, 304)
  t.is(empty.message, 'engine answered HTTP 304 Not Modified')
})

test('PullProgress finds an error line, also split across chunks, and prefers errorDetail', (t) => {
  const p = new PullProgress()
  p.push('{"status":"Pulling from library/x","id":"1"}\n{"status":"Downl')
  p.push('oading","progress":"[=>   ]"}\n{"errorDetail":{"message":"manifest for x:9 not ')
  t.is(p.error, undefined)
  p.push('found"},"error":"short"}\n{"error":"a later one"}\n')
  p.end()
  t.is(p.error, 'manifest for x:9 not found')

  const onlyError = new PullProgress()
  onlyError.push('garbage that is not json\n{"error":"unauthorized"}')
  t.is(onlyError.error, undefined, 'a line is read once it is complete')
  onlyError.end()
  t.is(onlyError.error, 'unauthorized')

  const fine = new PullProgress()
  fine.push('{"status":"Digest: sha256:abc"}\n{"status":"Status: Downloaded newer image for x:1"}\n')
  fine.end()
  t.is(fine.error, undefined)

  const bare = new PullProgress()
  bare.push('{"errorDetail":{}}\n')
  t.is(bare.error, 'pull failed')
})

test('splitImageReference: tag, digest, registry port, and :latest by default', (t) => {
  t.deepEqual(splitImageReference('busybox'), { fromImage: 'busybox', tag: 'latest' })
  t.deepEqual(splitImageReference('shoal-test/busybox:1.36'), { fromImage: 'shoal-test/busybox', tag: '1.36' })
  t.deepEqual(splitImageReference('localhost:5000/app'), { fromImage: 'localhost:5000/app', tag: 'latest' })
  t.deepEqual(splitImageReference('localhost:5000/app:v2'), { fromImage: 'localhost:5000/app', tag: 'v2' })
  t.deepEqual(splitImageReference('app@sha256:0123'), { fromImage: 'app', tag: 'sha256:0123' })
})

test('decodePathStat reads the base64 JSON header; nothing when absent or unreadable', (t) => {
  const header = Buffer.from(JSON.stringify({ name: 'sh', size: 7, mode: 134218239, mtime: 'x', linkTarget: '/bin/busybox' })).toString('base64')
  t.deepEqual(decodePathStat(header), { name: 'sh', size: 7, mode: 134218239, mtime: 'x', linkTarget: '/bin/busybox' })
  t.is(decodePathStat(undefined), undefined)
  t.is(decodePathStat(Buffer.from('{nope').toString('base64')), undefined)
})

test('queryString leaves out undefined values and spells booleans as the engine reads them', (t) => {
  t.is(queryString(undefined), '')
  t.is(queryString({ a: undefined }), '')
  t.is(queryString({ all: true, v: false, t: 0, filters: '{"label":["a=b"]}' }), '?all=true&v=false&t=0&filters=%7B%22label%22%3A%5B%22a%3Db%22%5D%7D')
})

test('demuxStream routes frames to stdout and stderr, whatever the chunking', (t) => {
  const source = new PassThrough()
  const out: string[] = []
  const err: string[] = []
  demuxStream(source, (b) => out.push(b.toString()), (b) => err.push(b.toString()))
  const bytes = Buffer.concat([frame(1, 'one\n'), frame(2, 'oops\n'), frame(1, ''), frame(1, 'two\n'), frame(0, 'stdin?')])
  // one byte at a time: headers and payloads split everywhere
  for (let i = 0; i < bytes.length; i++) source.write(bytes.subarray(i, i + 1))
  t.deepEqual(out, ['one\n', '', 'two\n'])
  t.deepEqual(err, ['oops\n', 'stdin?'])
})

// ---- over a fake engine ----

type Handler = (req: IncomingMessage, res: ServerResponse, body: string) => void

interface FakeEngine {
  socketPath: string
  server: Server
  /** Requests seen, as "METHOD /path?query". */
  seen: string[]
  connections: number
}

async function fakeEngine(t: ExecutionContext, handler: Handler, onUpgrade?: (req: IncomingMessage, socket: Socket) => void): Promise<FakeEngine> {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-fake-engine-'))
  const socketPath = join(dir, 'docker.sock')
  const fake: FakeEngine = { socketPath, server: undefined as unknown as Server, seen: [], connections: 0 }
  const server = createServer((req, res) => {
    fake.seen.push(`${req.method} ${req.url}`)
    let body = ''
    req.on('data', (c: Buffer) => (body += c))
    req.on('end', () => handler(req, res, body))
  })
  server.on('connection', () => fake.connections++)
  server.on('upgrade', (req: IncomingMessage, socket: Socket) => {
    fake.seen.push(`${req.method} ${req.url} upgrade=${req.headers.upgrade} connection=${req.headers.connection}`)
    onUpgrade?.(req, socket)
  })
  fake.server = server
  await new Promise<void>((resolve) => server.listen(socketPath, resolve))
  t.teardown(async () => {
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
    await rm(dir, { recursive: true, force: true })
  })
  return fake
}

const sendJson = (res: ServerResponse, status: number, value: unknown) => {
  res.writeHead(status, { 'Content-Type': 'application/json' })
  res.end(JSON.stringify(value) + '\n')
}

test('answers outside 2xx reject with the status and the engine message; calls share one connection', async (t) => {
  const fake = await fakeEngine(t, (req, res) => {
    if (req.url === '/version') return sendJson(res, 200, { Version: '20.10.24', ApiVersion: '1.41', Os: 'linux', Arch: 'amd64' })
    if (req.url?.startsWith('/containers/gone/json')) return sendJson(res, 404, { message: 'No such container: gone' })
    if (req.url?.startsWith('/containers/c1/stop')) {
      res.writeHead(304)
      return res.end()
    }
    sendJson(res, 500, { message: 'unexpected' })
  })
  const engine = new DockerEngine({ socketPath: fake.socketPath })
  t.teardown(() => engine.close())
  t.is((await engine.version()).ApiVersion, '1.41')
  const gone = await t.throwsAsync(engine.inspectContainer('gone'), { instanceOf: DockerEngineError })
  t.is(gone?.statusCode, 404)
  t.is(gone?.message, 'No such container: gone')
  const stopped = await t.throwsAsync(engine.stopContainer('c1', 3), { instanceOf: DockerEngineError })
  t.is(stopped?.statusCode, 304)
  await engine.version()
  t.is(fake.connections, 1, 'keep-alive: one connection for sequential calls')
  t.true(fake.seen.includes('POST /containers/c1/stop?t=3'))
})

test('create sends the name as a query parameter and the rest as the body; list sends filters as JSON', async (t) => {
  let created: unknown
  const fake = await fakeEngine(t, (req, res, body) => {
    if (req.url?.startsWith('/containers/create')) {
      created = JSON.parse(body)
      return sendJson(res, 201, { Id: 'abc123', Warnings: [] })
    }
    if (req.url?.startsWith('/containers/json')) return sendJson(res, 200, [{ Id: 'abc123', Labels: { 'shoal.node': 'n1' } }])
    sendJson(res, 500, { message: 'unexpected' })
  })
  const engine = new DockerEngine({ socketPath: fake.socketPath })
  t.teardown(() => engine.close())
  const id = await engine.createContainer({ name: 'shoal-web-a1', Image: 'busybox:1', Cmd: ['sleep', '1'], HostConfig: { Init: true } })
  t.is(id, 'abc123')
  t.deepEqual(created, { Image: 'busybox:1', Cmd: ['sleep', '1'], HostConfig: { Init: true } })
  t.is(fake.seen[0], 'POST /containers/create?name=shoal-web-a1')
  const list = await engine.listContainers({ all: true, filters: { label: ['shoal.node=n1'] } })
  t.deepEqual(list, [{ Id: 'abc123', Labels: { 'shoal.node': 'n1' } }])
  t.is(fake.seen[1], `GET /containers/json?all=true&filters=${encodeURIComponent('{"label":["shoal.node=n1"]}')}`)
})

test('pull: an error inside the 200 progress stream rejects; an HTTP error carries the engine message; a clean stream resolves', async (t) => {
  const fake = await fakeEngine(t, (req, res) => {
    const url = new URL(req.url ?? '', 'http://x')
    const image = `${url.searchParams.get('fromImage')}:${url.searchParams.get('tag')}`
    if (image === 'bad/image:1') {
      res.writeHead(200, { 'Content-Type': 'application/json' })
      res.write('{"status":"Pulling from bad/image","id":"1"}\r\n')
      res.write('{"errorDetail":{"message":"manifest for bad/image:1 not fou')
      setTimeout(() => res.end('nd"},"error":"manifest unknown"}\r\n'), 20)
      return
    }
    if (image === 'nohost/image:latest') return sendJson(res, 500, { message: 'Get "https://registry-1.docker.io/v2/": no such host' })
    res.writeHead(200, { 'Content-Type': 'application/json' })
    res.end('{"status":"Pulling"}\r\n{"status":"Status: Downloaded newer image for ok/image:2"}\r\n')
  })
  const engine = new DockerEngine({ socketPath: fake.socketPath })
  t.teardown(() => engine.close())
  const inStream = await t.throwsAsync(engine.pullImage('bad/image:1'), { instanceOf: DockerEngineError })
  t.is(inStream?.message, 'manifest for bad/image:1 not found')
  t.is(inStream?.statusCode, undefined)
  const http = await t.throwsAsync(engine.pullImage('nohost/image'), { instanceOf: DockerEngineError })
  t.is(http?.statusCode, 500)
  t.is(http?.message, 'Get "https://registry-1.docker.io/v2/": no such host')
  await t.notThrowsAsync(engine.pullImage('ok/image:2'))
  t.true(fake.seen.includes('POST /images/create?fromImage=nohost%2Fimage&tag=latest'))
})

test('pull: the signal aborts a stream that never ends', async (t) => {
  const fake = await fakeEngine(t, (_req, res) => {
    res.writeHead(200, { 'Content-Type': 'application/json' })
    res.write('{"status":"Waiting"}\n')
  })
  const engine = new DockerEngine({ socketPath: fake.socketPath })
  t.teardown(() => engine.close())
  const controller = new AbortController()
  setTimeout(() => controller.abort(), 100)
  await t.throwsAsync(engine.pullImage('slow/image:1', controller.signal), { name: 'AbortError' })
})

test('exec start hijacks the connection: 101, stdin in, multiplexed output out (also bytes sent with the 101)', async (t) => {
  const fake = await fakeEngine(
    t,
    (_req, res) => sendJson(res, 500, { message: 'unexpected' }),
    (_req, socket) => {
      // The first frame in the same write as the 101: it reaches the client as the upgrade's head.
      socket.write(Buffer.concat([
        Buffer.from('HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n'),
        frame(1, 'ready\n'),
      ]))
      let input = ''
      socket.on('data', (c: Buffer) => (input += c))
      socket.on('end', () => {
        socket.write(frame(1, input.toUpperCase()))
        socket.end(frame(2, 'done\n'))
      })
    },
  )
  const engine = new DockerEngine({ socketPath: fake.socketPath })
  t.teardown(() => engine.close())
  const socket = await engine.startExec('e1', { tty: false })
  let out = ''
  let err = ''
  demuxStream(socket, (b) => (out += b), (b) => (err += b))
  socket.end('hello\n')
  await new Promise((resolve) => socket.once('close', resolve))
  t.is(out, 'ready\nHELLO\n')
  t.is(err, 'done\n')
  t.is(fake.seen[0], 'POST /exec/e1/start upgrade=tcp connection=Upgrade')
})

test('exec start answered with an error instead of 101 rejects with status and message', async (t) => {
  const fake = await fakeEngine(t, (_req, res) => sendJson(res, 409, { message: 'Container abc is not running' }))
  // Upgrade requests reach the 'upgrade' event when the server listens for it; here it does not, so the handler answers.
  fake.server.removeAllListeners('upgrade')
  const engine = new DockerEngine({ socketPath: fake.socketPath })
  t.teardown(() => engine.close())
  const err = await t.throwsAsync(engine.startExec('e1', { tty: true }), { instanceOf: DockerEngineError })
  t.is(err?.statusCode, 409)
  t.is(err?.message, 'Container abc is not running')
})

test('an absent socket rejects with the connection error code', async (t) => {
  const engine = new DockerEngine({ socketPath: join(tmpdir(), `shoal-no-such-${process.pid}.sock`) })
  t.teardown(() => engine.close())
  const err = await t.throwsAsync(engine.version())
  t.is((err as NodeJS.ErrnoException).code, 'ENOENT')
})

// ---- the driver's error mapping over the client ----

test('driver: a port taken at start is named, the container removed; a pull failing in its stream names the image', async (t) => {
  const shStat = Buffer.from(JSON.stringify({ name: 'httpd', size: 1, mode: 0o755, mtime: '', linkTarget: '' })).toString('base64')
  const fake = await fakeEngine(t, (req, res) => {
    const url = req.url ?? ''
    if (url.startsWith('/images/busybox:1/json')) return sendJson(res, 200, { Id: 'sha256:img', Config: { Env: ['PATH=/bin'] } })
    if (url.startsWith('/images/missing:1/json')) return sendJson(res, 404, { message: 'No such image: missing:1' })
    if (url.startsWith('/images/create')) {
      res.writeHead(200, { 'Content-Type': 'application/json' })
      return res.end('{"status":"Pulling"}\n{"errorDetail":{"message":"pull access denied for missing"},"error":"pull access denied"}\n')
    }
    if (url.startsWith('/containers/create')) return sendJson(res, 201, { Id: 'c1' })
    if (url.startsWith('/containers/c1/archive')) {
      res.writeHead(200, { 'X-Docker-Container-Path-Stat': shStat })
      return res.end()
    }
    if (url.startsWith('/containers/c1/start')) {
      return sendJson(res, 500, { message: 'driver failed programming external connectivity on endpoint shoal-web-a1: Bind for 127.0.0.1:8080 failed: port is already allocated' })
    }
    if (url.startsWith('/containers/c1?')) {
      res.writeHead(204)
      return res.end()
    }
    sendJson(res, 500, { message: `unexpected ${req.method} ${url}` })
  })
  const driver = new DockerDriver({ socketPath: fake.socketPath, pullTimeoutMs: 2000 })
  t.teardown(() => driver.docker.close())

  const spec = dockerSpec({ image: 'busybox:1', command: '/bin/httpd', ports: ['http'] }, {
    allocId: 'a1',
    ports: [{ label: 'http', value: 8080, to: 80, hostIp: '127.0.0.1' }],
  })
  const taken = await t.throwsAsync(driver.start(spec), { instanceOf: DriverError })
  t.is(taken?.message, 'port 127.0.0.1:8080 is already in use')
  t.false(taken?.recoverable)
  t.true(fake.seen.includes('DELETE /containers/c1?force=true&v=true'), 'the created container is removed')
  t.true(fake.seen.includes(`HEAD /containers/c1/archive?path=${encodeURIComponent('/bin/httpd')}`))

  const missing = await t.throwsAsync(driver.start(dockerSpec({ image: 'missing:1' })), { instanceOf: DriverError })
  t.is(missing?.message, 'image "missing:1" not found locally and could not be pulled: pull access denied for missing')
})
