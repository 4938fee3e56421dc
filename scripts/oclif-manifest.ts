// Writes oclif.manifest.json from the command modules (`npm run manifest`);
// test/unit/cli-manifest.test.ts fails when it is out of date.
import { writeFile } from 'node:fs/promises'
import { buildManifest, MANIFEST_PATH } from '../src/cli/manifest.ts'

await writeFile(MANIFEST_PATH, await buildManifest())
console.log(`wrote ${MANIFEST_PATH}`)
