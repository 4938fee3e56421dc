// The cluster pre-shared key (libp2p pnet, "swarm.key" format). Every agent of a
// cluster holds the same key; connections from anyone without it fail before the
// Noise handshake even starts.
//
// File format (three lines, as produced by `generateClusterKey()`):
//   /key/swarm/psk/1.0.0/
//   /base16/
//   <64 hex digits = 32 random bytes>
import { randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'

const HEADER = '/key/swarm/psk/1.0.0/'
const CODEC = '/base16/'
const KEY_BYTES = 32

/** A fresh cluster key, in the file format (ends with a newline). */
export function generateClusterKey(): string {
  return `${HEADER}\n${CODEC}\n${randomBytes(KEY_BYTES).toString('hex')}\n`
}

/**
 * Validate key file text and return it in the canonical form pnet expects
 * (as bytes). Throws an Error whose message starts with `source: ` on a
 * malformed key.
 */
export function parseClusterKey(text: string, source = 'cluster key'): Uint8Array {
  const lines = text
    .split(/\r\n|\r|\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '')
  const hint = `expected 3 lines: "${HEADER}", "${CODEC}" and ${KEY_BYTES * 2} hex digits`
  if (lines.length !== 3) {
    throw new Error(`${source}: malformed cluster key: found ${lines.length} non-empty line(s); ${hint}`)
  }
  const [header, codec, hex] = lines as [string, string, string]
  if (header !== HEADER) {
    throw new Error(`${source}: malformed cluster key: first line is ${JSON.stringify(header.slice(0, 40))}; ${hint}`)
  }
  if (codec !== CODEC) {
    throw new Error(
      `${source}: malformed cluster key: unsupported encoding ${JSON.stringify(codec.slice(0, 40))} (only ${CODEC}); ${hint}`,
    )
  }
  if (!/^[0-9a-fA-F]+$/.test(hex) || hex.length !== KEY_BYTES * 2) {
    throw new Error(
      `${source}: malformed cluster key: the key must be ${KEY_BYTES * 2} hex digits, got ${hex.length} character(s)` +
        (/^[0-9a-fA-F]*$/.test(hex) ? '' : ' including non-hex characters'),
    )
  }
  return new TextEncoder().encode(`${HEADER}\n${CODEC}\n${hex.toLowerCase()}`)
}

/**
 * Normalise a key given in any accepted form: key file text, key file bytes,
 * or the raw 32 key bytes.
 */
export function normalizeClusterKey(key: Uint8Array | string, source = 'cluster key'): Uint8Array {
  if (typeof key === 'string') return parseClusterKey(key, source)
  if (key.byteLength === KEY_BYTES) {
    return parseClusterKey(`${HEADER}\n${CODEC}\n${Buffer.from(key).toString('hex')}`, source)
  }
  return parseClusterKey(new TextDecoder().decode(key), source)
}

/**
 * Read and validate a cluster key file. Errors are prefixed with
 * `--cluster-key-file: ` so the CLI can show them as they are.
 */
export async function readClusterKey(path: string): Promise<Uint8Array> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    const reason =
      code === 'ENOENT'
        ? 'no such file'
        : code === 'EACCES'
          ? 'permission denied'
          : code === 'EISDIR'
            ? 'is a directory'
            : (err as Error).message
    throw new Error(`--cluster-key-file: cannot read ${path}: ${reason}`, { cause: err })
  }
  return parseClusterKey(text, `--cluster-key-file: ${path}`)
}
