// oclif's command manifest: the flags, args and help of every command, so a
// command runs after loading its own module only (without it, oclif imports
// every command on each start to learn their names).
import { Plugin } from '@oclif/core'
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
export const MANIFEST_PATH = fileURLToPath(new URL('../../oclif.manifest.json', import.meta.url))

/** The manifest as the command modules define it now (loads them all). */
export async function buildManifest(): Promise<string> {
  const plugin = new Plugin({ root: ROOT, isRoot: true, ignoreManifest: true })
  await plugin.load()
  const commands = Object.fromEntries(Object.entries(plugin.manifest.commands).sort(([a], [b]) => a.localeCompare(b)))
  return JSON.stringify({ ...plugin.manifest, commands }, null, 2) + '\n'
}

/** The manifest on disk, or undefined. */
export async function committedManifest(): Promise<string | undefined> {
  return readFile(MANIFEST_PATH, 'utf8').catch(() => undefined)
}
