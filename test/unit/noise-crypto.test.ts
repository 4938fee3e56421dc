// Noise's ChaCha20-Poly1305 with cached key objects interoperates with the
// library's own implementation in both directions and still rejects tampering.
import test from 'ava'
import { randomBytes } from 'node:crypto'
import { defaultCrypto } from '@chainsafe/libp2p-noise/crypto'
import { Uint8ArrayList } from 'uint8arraylist'
import { noiseCrypto } from '../../src/gossip/noise-crypto.ts'

const bytes = (b: Uint8Array | Uint8ArrayList) => Buffer.from(b instanceof Uint8Array ? b : b.subarray())

test('frames of every size decrypt with the other implementation, both ways', (t) => {
  const k = randomBytes(32)
  const ad = randomBytes(8)
  for (const size of [0, 100, 511, 512, 1199, 1200, 4000, 65_519]) {
    const nonce = randomBytes(12)
    const plaintext = randomBytes(size)
    const ours = bytes(noiseCrypto.chaCha20Poly1305Encrypt(plaintext, nonce, ad, k))
    t.deepEqual(ours, bytes(defaultCrypto.chaCha20Poly1305Encrypt(plaintext, nonce, ad, k)), `same ciphertext, ${size} bytes`)
    t.deepEqual(bytes(defaultCrypto.chaCha20Poly1305Decrypt(ours, nonce, ad, k)), plaintext)
    t.deepEqual(bytes(noiseCrypto.chaCha20Poly1305Decrypt(ours, nonce, ad, k)), plaintext)
    const list = new Uint8ArrayList(plaintext.subarray(0, size >> 1), plaintext.subarray(size >> 1))
    t.deepEqual(bytes(noiseCrypto.chaCha20Poly1305Encrypt(list, nonce, ad, k)), ours, `a list of chunks, ${size} bytes`)
    t.deepEqual(bytes(noiseCrypto.chaCha20Poly1305Decrypt(new Uint8ArrayList(ours), nonce, ad, k)), plaintext)
  }
})

test('a changed byte, nonce or key is refused', (t) => {
  const k = randomBytes(32)
  const nonce = randomBytes(12)
  const ad = new Uint8Array(0)
  const ciphertext = bytes(noiseCrypto.chaCha20Poly1305Encrypt(randomBytes(4000), nonce, ad, k))
  const flipped = Buffer.from(ciphertext)
  flipped[100]! ^= 1
  t.throws(() => noiseCrypto.chaCha20Poly1305Decrypt(flipped, nonce, ad, k))
  t.throws(() => noiseCrypto.chaCha20Poly1305Decrypt(ciphertext, randomBytes(12), ad, k))
  // The same key array rewritten in place must not decrypt with the old key.
  const reused = Buffer.from(k)
  t.is(bytes(noiseCrypto.chaCha20Poly1305Decrypt(ciphertext, nonce, ad, reused)).length, 4000)
  reused[0]! ^= 1
  t.throws(() => noiseCrypto.chaCha20Poly1305Decrypt(ciphertext, nonce, ad, reused))
})
