// Interactive exec (`shoal alloc exec -i -t`): an HTTP Upgrade to a raw two-way byte
// stream, as `docker exec -it` hijacks its connection. The request
//
//   GET /v1/client/allocation/:id/exec/session?command=["sh"]&task=web&tty=1&stdin=1&rows=24&cols=80
//   Connection: Upgrade
//   Upgrade: shoal-exec/1
//
// is answered 101 and then carries frames both ways: a type byte, a 4-byte big-endian
// length, the payload. Client → agent: stdin bytes, end of stdin, a window size
// ({"rows","cols"}). Agent → client: stdout bytes, stderr bytes (no tty only), then one
// exit frame ({"exitCode"} or {"error"}) and the end. Any other answer is an HTTP error
// with the usual JSON body. An agent proxies the upgrade to the allocation's node.
import http, { type IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import { HttpError } from './http.ts'

export const EXEC_UPGRADE = 'shoal-exec/1'

export const FRAME = { stdin: 0, stdinEnd: 1, resize: 2, stdout: 3, stderr: 4, exit: 5 } as const

export function frame(type: number, payload: Buffer | string = ''): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload) : payload
  const head = Buffer.allocUnsafe(5)
  head[0] = type
  head.writeUInt32BE(body.length, 1)
  return Buffer.concat([head, body])
}

/** Largest frame accepted: bigger ones are a broken peer, not a terminal. */
const MAX_FRAME = 4 * 1024 * 1024

/** Splits a byte stream into frames. */
export class FrameReader {
  #buf: Buffer = Buffer.alloc(0)

  push(chunk: Buffer): { type: number; payload: Buffer }[] {
    this.#buf = this.#buf.length ? Buffer.concat([this.#buf, chunk]) : chunk
    const out: { type: number; payload: Buffer }[] = []
    while (this.#buf.length >= 5) {
      const len = this.#buf.readUInt32BE(1)
      if (len > MAX_FRAME) throw new Error(`exec session frame of ${len} bytes`)
      if (this.#buf.length < 5 + len) break
      out.push({ type: this.#buf[0]!, payload: this.#buf.subarray(5, 5 + len) })
      this.#buf = this.#buf.subarray(5 + len)
    }
    return out
  }
}

export interface SessionSpec {
  task?: string
  command: string[]
  tty: boolean
  stdin: boolean
  rows: number
  cols: number
}

/** The session's query parameters, checked (HttpError 400 naming the parameter). */
export function sessionSpec(q: URLSearchParams): SessionSpec {
  let command: unknown
  try {
    command = JSON.parse(q.get('command') ?? '')
  } catch {
    throw new HttpError(400, 'command: must be a JSON array of strings like ["sh", "-c", "ls"]', 'command')
  }
  if (!Array.isArray(command) || command.length === 0 || !command.every((c) => typeof c === 'string') || command[0] === '') {
    throw new HttpError(400, 'command: must be a non-empty JSON array of strings like ["sh", "-c", "ls"]', 'command')
  }
  const flag = (name: string) => {
    const v = q.get(name)
    if (v === null || v === '0' || v === 'false') return false
    if (v === '1' || v === 'true' || v === '') return true
    throw new HttpError(400, `${name}: must be 1 or 0 (got "${v}")`, name)
  }
  const size = (name: string, dflt: number) => {
    const v = q.get(name)
    if (v === null) return dflt
    const n = Number(v)
    if (!Number.isInteger(n) || n < 1 || n > 10_000) throw new HttpError(400, `${name}: must be an integer from 1 to 10000 (got "${v}")`, name)
    return n
  }
  const task = q.get('task')
  return { ...(task ? { task } : {}), command: command as string[], tty: flag('tty'), stdin: flag('stdin'), rows: size('rows', 24), cols: size('cols', 80) }
}

/** Answers a refused upgrade with a plain HTTP error and closes the socket. */
export function refuseUpgrade(socket: Duplex, err: HttpError): void {
  const body = JSON.stringify({ error: err.message, ...(err.field ? { field: err.field } : {}) })
  socket.end(`HTTP/1.1 ${err.status} ${http.STATUS_CODES[err.status] ?? 'Error'}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`)
}

export function acceptUpgrade(socket: Duplex): void {
  socket.write(`HTTP/1.1 101 Switching Protocols\r\nconnection: Upgrade\r\nupgrade: ${EXEC_UPGRADE}\r\n\r\n`)
}

/** Relays an upgrade request to another agent (the allocation's node), both ways. */
export function proxyUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, url: URL): void {
  const upstream = http.request(url, { method: req.method, headers: { connection: 'Upgrade', upgrade: EXEC_UPGRADE } })
  upstream.on('upgrade', (_res, upSocket, upHead) => {
    acceptUpgrade(socket)
    if (upHead.length) socket.write(upHead)
    if (head.length) upSocket.write(head)
    upSocket.pipe(socket)
    socket.pipe(upSocket)
    upSocket.on('error', () => socket.destroy())
    socket.on('error', () => upSocket.destroy())
    socket.on('close', () => upSocket.destroy())
  })
  upstream.on('response', (res) => {
    const chunks: Buffer[] = []
    res.on('data', (c: Buffer) => chunks.push(c))
    res.on('end', () => {
      let message = Buffer.concat(chunks).toString()
      try {
        message = (JSON.parse(message) as { error?: string }).error ?? message
      } catch {
        // not JSON
      }
      refuseUpgrade(socket, new HttpError(res.statusCode ?? 502, message))
    })
  })
  upstream.on('error', (err) => refuseUpgrade(socket, new HttpError(502, `the allocation's node did not answer: ${err.message}`)))
  upstream.end()
}
