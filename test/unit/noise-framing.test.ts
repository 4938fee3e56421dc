import test from 'ava'
import { noiseFrameLength } from '../../src/gossip/noise-framing.ts'

/** The shape of a Uint8ArrayList (chunks read through get()); the real one is exercised by test/integration/p2p-host. */
const list = (...chunks: number[][]) => {
  const all = chunks.flat()
  return { byteLength: all.length, get: (i: number) => all[i]! }
}

test('reads the 2-byte big-endian Noise length from arrays and lists; too few bytes is a RangeError', (t) => {
  t.is(noiseFrameLength(new Uint8Array([0x01, 0x02, 0xff])), 0x0102)
  t.is(noiseFrameLength(new Uint8Array([0xff, 0xff])), 0xffff)
  t.is(noiseFrameLength(list([0xab], [0xcd, 0x00])), 0xabcd)
  for (const short of [new Uint8Array([]), new Uint8Array([7]), list([7])]) {
    t.throws(() => noiseFrameLength(short), { instanceOf: RangeError })
  }
})
