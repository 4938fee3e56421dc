// The stripped sources of Shoal's .ts modules, cached on disk (Node's compile
// cache does not cover type stripping): one file per source, named by its
// path, ending with a comment of the size and mtime it was made from.
// Stripping only blanks the types out, so lines and columns in stack traces
// stay those of the .ts file.
//
// Node's type stripper is a WebAssembly module that stays resident (~20 MiB of
// RSS) once loaded, so a long-lived agent must not load it: a cache miss under
// src/ fills the cache for the whole tree in a process of its own
// (`node bin/ts-cache.js DIR`).

const { mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } = process.getBuiltinModule('node:fs')
const { tmpdir } = process.getBuiltinModule('node:os')
const { basename, join } = process.getBuiltinModule('node:path')
const { fileURLToPath } = process.getBuiltinModule('node:url')

export const CACHE_DIR = join(tmpdir(), `shoal-ts-cache-${process.getuid?.() ?? 0}`)
mkdirSync(CACHE_DIR, { recursive: true })

/**
 * 64 bits of FNV-1a (two 32-bit runs from different offsets) over a path: a
 * cache file name without loading node:crypto.
 * @param {string} path
 */
function pathHash(path) {
  let a = 0x811c9dc5
  let b = 0x050c5d1f
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i)
    a = Math.imul(a ^ c, 0x01000193) >>> 0
    b = Math.imul(b ^ c, 0x01000193) >>> 0
  }
  return a.toString(16).padStart(8, '0') + b.toString(16).padStart(8, '0')
}

/** @param {string} path */
function cacheEntry(path) {
  const st = statSync(path)
  return {
    stamp: `\n//shoal-ts-cache ${process.version} ${st.size} ${st.mtimeMs}\n`,
    file: join(CACHE_DIR, `${basename(path, '.ts')}-${pathHash(path)}.js`),
  }
}

/**
 * The cached stripped source of a .ts file, or undefined when missing or stale.
 * @param {string} path
 */
export function cachedSource(path) {
  const { stamp, file } = cacheEntry(path)
  try {
    const source = readFileSync(file, 'utf8')
    return source.endsWith(stamp) ? source : undefined
  } catch {
    return undefined
  }
}

/**
 * Strips a .ts file in this process and caches the result.
 * @param {string} path
 */
export function stripAndCache(path) {
  const { stripTypeScriptTypes } = process.getBuiltinModule('node:module')
  const { stamp, file } = cacheEntry(path)
  const source = stripTypeScriptTypes(readFileSync(path, 'utf8'), { mode: 'strip' }) + stamp
  // Written aside, then renamed: a concurrent start never reads half a file.
  writeFileSync(`${file}.${process.pid}`, source)
  renameSync(`${file}.${process.pid}`, file)
  return source
}

/**
 * Caches every .ts file under dir whose cached source is missing or stale.
 * @param {string} dir
 */
export function fillCache(dir) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, e.name)
    if (e.isDirectory()) fillCache(path)
    else if (e.name.endsWith('.ts') && cachedSource(path) === undefined) stripAndCache(path)
  }
}

/**
 * Fills the cache for the tree under dir in a child process, so that this one
 * never loads the stripper; false if that failed.
 * @param {string} dir
 */
export function fillCacheAside(dir) {
  const { execFileSync } = process.getBuiltinModule('node:child_process')
  try {
    execFileSync(process.execPath, ['--disable-warning=ExperimentalWarning', fileURLToPath(import.meta.url), dir], { stdio: ['ignore', 'ignore', 'inherit'] })
    return true
  } catch {
    return false
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url) && process.argv[2]) fillCache(process.argv[2])
