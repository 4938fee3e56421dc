// bin/shoal's cache of stripped .ts sources: a cold cache is filled for all of
// src/ by a child process, so the CLI's own process (and a long-lived agent)
// never loads Node's type stripper.
import { execFile } from 'node:child_process'
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import os from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import test from 'ava'

const run = promisify(execFile)
const ROOT = fileURLToPath(new URL('../..', import.meta.url))

async function srcFiles(dir = join(ROOT, 'src')): Promise<number> {
  let n = 0
  for (const e of await readdir(dir, { withFileTypes: true })) {
    if (e.isDirectory()) n += await srcFiles(join(dir, e.name))
    else if (e.name.endsWith('.ts')) n++
  }
  return n
}

test('a cold cache is filled for all of src/ aside; the command itself never strips types', async (t) => {
  const tmp = await mkdtemp(join(os.tmpdir(), 'shoal-ts-cache-test-'))
  t.teardown(() => rm(tmp, { recursive: true, force: true }))
  // Without --disable-warning: a call of stripTypeScriptTypes in this process would print Node's ExperimentalWarning.
  const cold = await run(process.execPath, [join(ROOT, 'bin/shoal.js'), 'version'], { env: { ...process.env, TMPDIR: tmp } })
  t.regex(cold.stdout, /^shoal \d/)
  t.notRegex(cold.stderr, /stripTypeScriptTypes/)
  const cacheDir = join(tmp, `shoal-ts-cache-${process.getuid?.() ?? 0}`)
  t.is((await readdir(cacheDir)).filter((f) => f.endsWith('.js')).length, await srcFiles())
  const warm = await run(process.execPath, [join(ROOT, 'bin/shoal.js'), 'version'], { env: { ...process.env, TMPDIR: tmp } })
  t.is(warm.stdout, cold.stdout)
  t.is(warm.stderr, '')
})

test('a .ts file outside src/ is stripped in process (nothing else would cache it)', async (t) => {
  const { cachedSource, stripAndCache } = await import('../../bin/ts-cache.js')
  const file = join(ROOT, 'test/helpers/tasks.ts')
  const source = stripAndCache(file)
  t.regex(source, /export function uniqueId\(prefix = 'test'\)/, 'types blanked, code kept')
  t.is(cachedSource(file), source)
})
