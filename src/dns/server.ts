// The DNS server every agent runs (UDP and TCP on one port): answers names in
// the Shoal domain from the local catalog (answer.ts), forwards the others to
// the configured recursors or refuses them. A packet that does not decode gets
// FORMERR (or nothing, without a full header); no packet stops the server.
import { createSocket, type Socket as UdpSocket } from 'node:dgram'
import { connect, createServer, isIPv6, type Server, type Socket } from 'node:net'
import type { AddressInfo } from 'node:net'
import dnsPacket from 'dns-packet'
import type { DecodedPacket } from 'dns-packet'
import type { StateStore } from '../fsm/state.ts'
import { answerQuery, errorResponse, formErrFor, MAX_UDP_PAYLOAD, type DnsCatalog } from './answer.ts'

export interface HostPort {
  host: string
  port: number
}

export interface DnsServerOptions extends HostPort {
  domain: string
  ttl: number
  /** Resolvers for names outside the domain, tried in order; none: such names are refused. */
  recursors: readonly HostPort[]
  catalog: DnsCatalog
  log?: { warn(msg: string): void }
}

const FORWARD_TIMEOUT_MS = 2_000
const TCP_IDLE_MS = 10_000
const MAX_TCP_CONNECTIONS = 256

/** The catalog as DNS sees it: instances of known services, undefined for unknown ones. */
export function stateCatalog(state: StateStore): DnsCatalog {
  return {
    instances: (name) => (state.serviceKnown(name) ? state.serviceInstances(name) : undefined),
    serial: () => state.catalogIndex,
  }
}

function shuffle<T>(items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1))
    ;[items[i], items[j]] = [items[j]!, items[i]!]
  }
  return items
}

export class DnsServer {
  readonly #o: DnsServerOptions
  #udp: UdpSocket | undefined
  #tcp: Server | undefined
  readonly #connections = new Set<Socket>()

  constructor(o: DnsServerOptions) {
    this.#o = o
  }

  /** Listens on UDP and TCP, on the same port (with port 0: the one UDP got). */
  async listen(): Promise<AddressInfo> {
    const { host, port } = this.#o
    const udp = createSocket({ type: isIPv6(host) ? 'udp6' : 'udp4' })
    udp.on('message', (msg, rinfo) => {
      void this.handle(msg, MAX_UDP_PAYLOAD).then((reply) => {
        try {
          if (reply && this.#udp === udp) udp.send(reply, rinfo.port, rinfo.address)
        } catch {
          // closed meanwhile
        }
      })
    })
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject)
      udp.bind(port, host, () => {
        udp.off('error', reject)
        resolve()
      })
    })
    udp.on('error', (err) => this.#o.log?.warn(`dns: udp: ${err.message}`))
    this.#udp = udp
    const addr = udp.address()
    const tcp = createServer((socket) => this.#serveTcp(socket))
    tcp.maxConnections = MAX_TCP_CONNECTIONS
    try {
      await new Promise<void>((resolve, reject) => {
        tcp.once('error', reject)
        tcp.listen(addr.port, host, () => {
          tcp.off('error', reject)
          resolve()
        })
      })
    } catch (err) {
      udp.close()
      this.#udp = undefined
      throw err
    }
    tcp.on('error', (err) => this.#o.log?.warn(`dns: tcp: ${err.message}`))
    this.#tcp = tcp
    return addr
  }

  async close(): Promise<void> {
    this.#udp?.close()
    this.#udp = undefined
    for (const s of this.#connections) s.destroy()
    const tcp = this.#tcp
    this.#tcp = undefined
    if (tcp) await new Promise<void>((resolve) => tcp.close(() => resolve()))
  }

  /** One query's bytes in, the reply's bytes out (undefined: send nothing). Never throws. */
  async handle(bytes: Buffer, maxSize: number): Promise<Buffer | undefined> {
    let query: DecodedPacket
    try {
      query = dnsPacket.decode(bytes)
    } catch {
      return formErrFor(bytes)
    }
    if (query.type === 'response') return undefined
    try {
      const result = answerQuery(query, this.#o.catalog, {
        domain: this.#o.domain, ttl: this.#o.ttl, recursion: this.#o.recursors.length > 0, maxSize, shuffle,
      })
      if (result.kind === 'answer') return dnsPacket.encode(result.packet)
      const reply = await this.#forward(bytes, maxSize > MAX_UDP_PAYLOAD)
      return reply ?? dnsPacket.encode(errorResponse(query, 'SERVFAIL'))
    } catch (err) {
      this.#o.log?.warn(`dns: answering a query failed: ${(err as Error).message}`)
      try {
        return dnsPacket.encode(errorResponse(query, 'SERVFAIL'))
      } catch {
        return formErrFor(bytes)
      }
    }
  }

  async #forward(query: Buffer, tcp: boolean): Promise<Buffer | undefined> {
    for (const r of this.#o.recursors) {
      const reply = await (tcp ? forwardTcp(query, r) : forwardUdp(query, r)).catch(() => undefined)
      if (reply) return reply
    }
    return undefined
  }

  /** DNS over TCP: each message is preceded by its length (2 bytes); several may share a connection. */
  #serveTcp(socket: Socket): void {
    this.#connections.add(socket)
    socket.setTimeout(TCP_IDLE_MS, () => socket.destroy())
    socket.on('error', () => socket.destroy())
    socket.on('close', () => this.#connections.delete(socket))
    let buf = Buffer.alloc(0)
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk])
      while (buf.length >= 2) {
        const len = buf.readUInt16BE(0)
        if (buf.length < 2 + len) break
        const msg = buf.subarray(2, 2 + len)
        buf = buf.subarray(2 + len)
        void this.handle(Buffer.from(msg), 65535).then((reply) => {
          if (!reply) return
          const out = Buffer.alloc(2 + reply.length)
          out.writeUInt16BE(reply.length, 0)
          reply.copy(out, 2)
          if (!socket.destroyed) socket.write(out)
        })
      }
    })
  }
}

/** Sends the query to a resolver over UDP from a fresh port; the reply with the same id. */
function forwardUdp(query: Buffer, to: HostPort): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const socket = createSocket({ type: isIPv6(to.host) ? 'udp6' : 'udp4' })
    const id = query.readUInt16BE(0)
    const done = (reply: Buffer | undefined) => {
      clearTimeout(timer)
      socket.close()
      resolve(reply)
    }
    const timer = setTimeout(() => done(undefined), FORWARD_TIMEOUT_MS)
    socket.on('error', () => done(undefined))
    socket.on('message', (msg) => {
      if (msg.length >= 2 && msg.readUInt16BE(0) === id) done(msg)
    })
    socket.send(query, to.port, to.host)
  })
}

function forwardTcp(query: Buffer, to: HostPort): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const socket = connect({ host: to.host, port: to.port })
    let buf = Buffer.alloc(0)
    const done = (reply: Buffer | undefined) => {
      clearTimeout(timer)
      socket.destroy()
      resolve(reply)
    }
    const timer = setTimeout(() => done(undefined), FORWARD_TIMEOUT_MS)
    socket.on('error', () => done(undefined))
    socket.on('connect', () => {
      const out = Buffer.alloc(2 + query.length)
      out.writeUInt16BE(query.length, 0)
      query.copy(out, 2)
      socket.write(out)
    })
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk])
      if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) done(buf.subarray(2, 2 + buf.readUInt16BE(0)))
    })
  })
}
