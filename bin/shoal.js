// The CLI's entry point. Plain JavaScript on purpose: the first TypeScript
// module a process loads makes Node initialise its type stripper (a WebAssembly
// module, ~20 ms), and with the hook below a command with a warm cache loads
// no TypeScript at all.
import { createHash } from 'node:crypto'
import { mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs'
import { enableCompileCache, registerHooks, stripTypeScriptTypes } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import process from 'node:process'
import { fileURLToPath } from 'node:url'

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
    const cached = join(cacheDir, createHash('sha1').update(path).digest('hex') + '.js')
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

// A long-lived agent does without oclif (its modules would stay resident) when
// its command line is a plain one; help and errors still go through oclif.
if (process.argv[2] === 'agent') {
  const { agentMain } = await import('../src/cli/agent.ts')
  if (await agentMain(process.argv.slice(3))) process.exit(0)
}

const { execute } = await import('@oclif/core')
await execute({ dir: import.meta.url })
