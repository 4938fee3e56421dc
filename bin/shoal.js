// The CLI's entry point. Plain JavaScript on purpose: Node strips the types of
// .ts modules itself only by loading its type stripper, which bin/ts-cache.js
// keeps out of this process. Built-in modules come from getBuiltinModule, not
// import, and process is the global: an ESM import of a built-in builds a
// facade of every export first (~5 ms for node:process alone).
import { cachedSource, fillCacheAside, stripAndCache } from './ts-cache.js'

const { enableCompileCache, registerHooks } = process.getBuiltinModule('node:module')
const { sep } = process.getBuiltinModule('node:path')
const { URL, fileURLToPath } = process.getBuiltinModule('node:url')

// Compiled code is cached by Node, stripped sources by ts-cache.js. The first
// miss under src/ (a new checkout, an edit) fills the cache for all of src/ in
// a child process: the type stripper never loads into a long-lived agent.
enableCompileCache()
const srcDir = fileURLToPath(new URL('../src', import.meta.url))
let filledAside = false
registerHooks({
  load(url, context, nextLoad) {
    if (!url.startsWith('file:') || !url.endsWith('.ts') || url.includes('/node_modules/')) return nextLoad(url, context)
    const path = fileURLToPath(url)
    let source = cachedSource(path)
    if (source === undefined && !filledAside && path.startsWith(srcDir + sep)) {
      filledAside = true
      if (fillCacheAside(srcDir)) source = cachedSource(path)
    }
    source ??= stripAndCache(path)
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
