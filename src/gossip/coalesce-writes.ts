// One write syscall per connection per turn of the event loop. Every libp2p
// frame reaches the TCP socket as several writes (Noise writes its 2-byte
// length and the ciphertext separately; Yamux answers each data frame with a
// window update), and with noDelay each write is a syscall and a packet of its
// own. Corking the socket at the first write of a turn and uncorking it once
// the turn's callbacks and microtasks have run sends them as one writev: the
// same bytes in the same order, no later than before the turn ended.
import type { Socket } from 'node:net'
import type { Connection } from '@libp2p/interface'

const COALESCED = Symbol('shoal.coalescedWrites')

/** The TCP socket under a libp2p connection, when it runs over @libp2p/tcp (maConn is not part of the typed API). */
export function socketOf(connection: Connection): Socket | undefined {
  const socket = (connection as unknown as { maConn?: { socket?: unknown } }).maConn?.socket
  return isSocket(socket) ? socket : undefined
}

function isSocket(v: unknown): v is Socket {
  return typeof v === 'object' && v !== null && typeof (v as Socket).cork === 'function' &&
    typeof (v as Socket).uncork === 'function' && typeof (v as Socket).write === 'function'
}

export function isCoalesced(socket: Socket): boolean {
  return (socket as Socket & { [COALESCED]?: true })[COALESCED] === true
}

/** Makes the socket send the writes of one event-loop turn together. Returns false if it already did. */
export function coalesceWrites(socket: Socket): boolean {
  const marked = socket as Socket & { [COALESCED]?: true }
  if (marked[COALESCED]) return false
  marked[COALESCED] = true
  let corked = false
  const uncork = () => {
    corked = false
    socket.uncork()
  }
  const write = socket.write
  socket.write = function (this: Socket, ...args: Parameters<Socket['write']>): boolean {
    if (!corked && !socket.destroyed) {
      corked = true
      socket.cork()
      process.nextTick(uncork)
    }
    return (write as (...a: unknown[]) => boolean).apply(this, args)
  } as Socket['write']
  return true
}
