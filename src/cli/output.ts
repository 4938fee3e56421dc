// What a command's logic needs of its front-end: oclif's Command has both
// methods, and bin/shoal.js's own front-end (plainIO) writes and exits directly.
import { ApiError } from '../api/client.ts'

export interface CommandIO {
  log(message: string): void
  exit(code: number): never
}

/** A problem the command reported: what `--json` puts in its error object. */
export interface ReportedError {
  message: string
  field?: string
}

const reported: ReportedError[] = []

/** The problems reported so far, in order. */
export function reportedErrors(): readonly ReportedError[] {
  return reported
}

/** Prints `Error: [field: ]message` on stderr, unwrapped (oclif's own error() wraps long lines), and records it. */
export function writeError(message: string, field?: string): void {
  reported.push(field === undefined ? { message } : { field, message })
  process.stderr.write(`Error: ${field === undefined ? '' : `${field}: `}${message}\n`)
}

/** Prints `Error: message` and exits. */
export function fail(io: Pick<CommandIO, 'exit'>, message: string, code = 1): never {
  writeError(message)
  return io.exit(code)
}

/**
 * Prints an API error as `Error: field: message` lines (and the current modify
 * index of a check-index conflict); returns the exit code: 4 not found, 1 else.
 */
export function reportApiError(err: ApiError): number {
  if (err.errors.length > 0) for (const e of err.errors) writeError(e.message, e.field)
  else writeError(err.message)
  if (err.status === 409 && typeof err.body.modifyIndex === 'number') process.stderr.write(`Current modify index: ${err.body.modifyIndex}\n`)
  return err.status === 404 ? 4 : 1
}

/** Standard output and process.exit (writes to files and pipes are synchronous on Linux, so nothing is lost). */
export const plainIO: CommandIO = {
  log: (message) => void process.stdout.write(`${message}\n`),
  exit: (code) => process.exit(code),
}

/** Runs a command's logic outside oclif: an error ends it as ApiCommand's catch would. */
export async function runPlain(run: (io: CommandIO) => Promise<unknown>): Promise<void> {
  try {
    await run(plainIO)
  } catch (err) {
    if (err instanceof ApiError) plainIO.exit(reportApiError(err))
    fail(plainIO, (err as Error).message)
  }
}
