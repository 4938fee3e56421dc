// The CLI's entry point. Plain JavaScript on purpose: the first TypeScript
// module a process loads makes Node initialise its type stripper (a WebAssembly
// module, ~20 ms), and with the hook below a command with a warm cache loads
// no TypeScript at all. Built-in modules come from getBuiltinModule, not
// import: an ESM import of node:crypto or node:fs builds a facade of every
// export first (~6 ms of start-up between them).
import process from 'node:process'

const { mkdirSync, readFileSync, renameSync, statSync, writeFileSync } = process.getBuiltinModule('node:fs')
const { enableCompileCache, registerHooks, stripTypeScriptTypes } = process.getBuiltinModule('node:module')
const { tmpdir } = process.getBuiltinModule('node:os')
const { basename, join } = process.getBuiltinModule('node:path')
const { fileURLToPath } = process.getBuiltinModule('node:url')

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

// Compiled code is cached by Node; the stripped sources of our .ts modules are
// cached here (Node's compile cache does not cover stripping): one file per
// source, named by its path, ending with a comment of the size and mtime it was
// made from. Stripping only blanks the types out, so lines and columns in stack
// traces stay those of the .ts file.
enableCompileCache()
const cacheDir = join(tmpdir(), `shoal-ts-cache-${process.getuid?.() ?? 0}`)
mkdirSync(cacheDir, { recursive: true })
registerHooks({
  load(url, context, nextLoad) {
    if (!url.startsWith('file:') || !url.endsWith('.ts') || url.includes('/node_modules/')) return nextLoad(url, context)
    const path = fileURLToPath(url)
    const st = statSync(path)
    const stamp = `\n//shoal-ts-cache ${process.version} ${st.size} ${st.mtimeMs}\n`
    const cached = join(cacheDir, `${basename(path, '.ts')}-${pathHash(path)}.js`)
    let source = ''
    try {
      source = readFileSync(cached, 'utf8')
    } catch {
      // not cached yet
    }
    if (!source.endsWith(stamp)) {
      source = stripTypeScriptTypes(readFileSync(path, 'utf8'), { mode: 'strip' }) + stamp
      // Written aside, then renamed: a concurrent start never reads half a file.
      writeFileSync(`${cached}.${process.pid}`, source)
      renameSync(`${cached}.${process.pid}`, cached)
    }
    return { format: 'module', source, shortCircuit: true }
  },
})

// Some commands run without oclif when their command line is a plain one: the
// long-lived agent (oclif's modules would stay resident) and `job run` (on the
// way to a running container). Help and errors still go through oclif.
/** @type {Record<string, (argv: string[]) => Promise<boolean>>} */
const plain = {
  agent: async (argv) => (await import('../src/cli/agent.ts')).agentMain(argv),
  'job run': async (argv) => (await import('../src/cli/job-run.ts')).jobRunMain(argv),
}
const [first = '', second = ''] = process.argv.slice(2)
const command = Object.hasOwn(plain, first) ? first : Object.hasOwn(plain, `${first} ${second}`) ? `${first} ${second}` : undefined
if (command && await plain[command]?.(process.argv.slice(2 + command.split(' ').length))) process.exit(0)

const { execute } = await import('@oclif/core')
await execute({ dir: import.meta.url })
