// Yamux flow control with fewer frames. The JS Yamux stream answers every
// data frame it receives with a window update, so each small message costs a
// second frame back: one more encryption, write, wake-up of the sender, read
// and decryption. go-yamux (and the Yamux spec's advice) sends the update
// once half the receive window is used. Raft and RPC streams carry many small
// messages, so their inbound side gets the go-yamux rule. The window stays
// correct: updates still go out as frames arrive, only in larger steps, and
// the sender always has at least half a window (128 KiB) to send into.
import type { Stream } from '@libp2p/interface'

/** The fields of @chainsafe/libp2p-yamux's YamuxStream this relies on (not part of its typed API). */
interface YamuxStreamFields {
  state: number
  recvWindow: number
  recvWindowCapacity: number
  sendWindowUpdate(): void
}

/** YamuxStream's StreamState.Established: no SYN/ACK flag is owed, not paused. */
const ESTABLISHED = 3
const LAZY = Symbol('shoal.lazyWindowUpdates')

function isYamuxStream(s: unknown): s is YamuxStreamFields {
  const y = s as Partial<YamuxStreamFields> | null
  return typeof y?.sendWindowUpdate === 'function' && typeof y.recvWindow === 'number' &&
    typeof y.recvWindowCapacity === 'number' && typeof y.state === 'number'
}

/** Sends the stream's window updates at half a window; false if it is not a Yamux stream (left as it is). */
export function lazyWindowUpdates(stream: Stream): boolean {
  const s = stream as unknown as YamuxStreamFields & { [LAZY]?: true }
  if (!isYamuxStream(s)) return false
  if (s[LAZY]) return true
  s[LAZY] = true
  const send = s.sendWindowUpdate
  s.sendWindowUpdate = function (this: YamuxStreamFields): void {
    if (this.state === ESTABLISHED && this.recvWindowCapacity * 2 >= this.recvWindow) return
    send.call(this)
  }
  return true
}
