import test from 'ava'
import { buildManifest, committedManifest } from '../../src/cli/manifest.ts'

// The CLI starts by reading oclif.manifest.json instead of importing every command:
// a manifest that lags behind a command's flags would parse them wrongly.
test('oclif.manifest.json matches the commands (run `npm run manifest` after changing one)', async (t) => {
  t.is(await committedManifest(), await buildManifest())
})

test('every command of the manifest is one the CLI can load', async (t) => {
  const manifest = JSON.parse((await committedManifest())!) as { commands: Record<string, { id: string; relativePath: string[] }> }
  t.true(Object.keys(manifest.commands).length >= 30)
  for (const [id, c] of Object.entries(manifest.commands)) {
    t.is(c.id, id)
    t.deepEqual(c.relativePath.slice(0, 2), ['src', 'commands'], id)
    t.is(c.relativePath.slice(2).join('/'), `${id.split(':').join('/')}.ts`, id)
  }
})
