import type { FieldError } from '../jobspec/errors.ts'
import { fail, writeError, type CommandIO } from './output.ts'

// Built-in modules by getBuiltinModule: an ESM import of one builds a facade of every export (start-up time).
const { readFileSync } = process.getBuiltinModule('node:fs')

/** The text of a job file; a file that cannot be read ends the command, naming it. */
export function readJobText(cmd: CommandIO, path: string): string {
  try {
    return readFileSync(path, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    return fail(cmd, `file: cannot read "${path}": ${code === 'ENOENT' ? 'no such file' : (err as Error).message}`, 1)
  }
}

/** Ends the command with every problem of a job file, one `Error: field: message` line each. */
export function failWithFileErrors(cmd: CommandIO, errors: readonly FieldError[]): never {
  for (const e of errors) writeError(e.message, e.field)
  return cmd.exit(1)
}

/** Every problem in a job file's text, found here rather than by an agent ([] when none). */
export async function jobFileErrors(text: string): Promise<FieldError[]> {
  // Loaded on use: the validator is the biggest part of the CLI's start-up otherwise.
  const { parseJobText } = await import('../jobspec/index.ts')
  const parsed = parseJobText(text)
  return parsed.ok ? [] : parsed.errors
}

/**
 * Reads and checks a job file for `job plan`: a missing file or any problem
 * in it ends the command with every error and its field path. Returns the
 * parsed JSON body the API takes (the server validates it again).
 */
export async function readJobFile(cmd: CommandIO, path: string): Promise<unknown> {
  const text = readJobText(cmd, path)
  const errors = await jobFileErrors(text)
  if (errors.length > 0) failWithFileErrors(cmd, errors)
  return JSON.parse(text.replace(/^\uFEFF/, ''))
}
