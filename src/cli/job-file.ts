import { readFile } from 'node:fs/promises'
import { fail, type CommandIO } from './output.ts'

/**
 * Reads and checks a job file for `job run` / `job plan`: a missing file or
 * any problem in it ends the command with every error and its field path.
 * Returns the parsed JSON body the API takes (the server validates it again).
 */
export async function readJobFile(cmd: CommandIO, path: string): Promise<unknown> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    return fail(cmd, `file: cannot read "${path}": ${code === 'ENOENT' ? 'no such file' : (err as Error).message}`, 1)
  }
  // Loaded on use: the validator is the biggest part of the CLI's start-up otherwise.
  const { parseJobText } = await import('../jobspec/index.ts')
  const parsed = parseJobText(text)
  if (!parsed.ok) {
    for (const e of parsed.errors) process.stderr.write(`Error: ${e.field}: ${e.message}\n`)
    return cmd.exit(1)
  }
  return JSON.parse(text.replace(/^\uFEFF/, ''))
}
