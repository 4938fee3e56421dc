// Job files: parsing, validation and normalisation into a JobSpec.

import { formatPath, type FieldError } from './errors.ts'
import { parseJson } from './json.ts'
import { validateJob, type SpecResult } from './validate.ts'

export { formatErrors, type FieldError } from './errors.ts'
export { DURATION_HINT, formatDuration, parseDuration, tryParseDuration } from './duration.ts'
export {
  DEFAULT_COUNT,
  DEFAULT_JOB_TYPE,
  DEFAULT_KILL_TIMEOUT_MS,
  DEFAULT_PRIORITY,
  DEFAULT_RESOURCES,
  JOB_TYPES,
  MAX_NAME_LENGTH,
  RESTART_MODES,
  defaultRestartPolicy,
  validateJob,
  type SpecResult,
} from './validate.ts'

/**
 * Parses the text of a job file and validates it. Invalid JSON is reported as
 * one error on field `source` ("file" in the CLI, "body" in the API) with its
 * line and column; keys repeated within one object (which JSON.parse would
 * silently collapse) are errors too.
 */
export function parseJobText(text: string, source = 'file'): SpecResult {
  // Editors on some platforms start UTF-8 files with a byte order mark; JSON.parse rejects it.
  const body = text.startsWith('\uFEFF') ? text.slice(1) : text
  if (body.trim() === '') {
    return { ok: false, errors: [{ field: source, message: 'is empty: expected a JSON object like {"job": {"web": {...}}}' }] }
  }
  const parsed = parseJson(body)
  if (!parsed.ok) {
    const { line, column } = parsed.location
    return { ok: false, errors: [{ field: source, message: `invalid JSON at line ${line}, column ${column}: ${parsed.message}` }] }
  }
  const errors: FieldError[] = parsed.duplicates.map((d) => {
    const { line, column } = d.location
    return { field: formatPath(d.path), message: `duplicate key at line ${line}, column ${column}: each key may appear only once` }
  })
  const result = validateJob(parsed.value)
  if (errors.length === 0) return result
  return { ok: false, errors: result.ok ? errors : [...errors, ...result.errors] }
}
