/** A value in the replicated variables store (like Nomad Variables). */
export interface Variable {
  path: string
  value: string
  createIndex: number
  modifyIndex: number
  createTime: number
  modifyTime: number
}

export const MAX_VAR_PATH_LENGTH = 256
export const MAX_VAR_VALUE_BYTES = 64 * 1024

/** Why a path is not acceptable, or null. Paths look like "app/db/password". */
export function varPathProblem(path: string): string | null {
  if (path.length === 0) return 'must not be empty'
  if (path.length > MAX_VAR_PATH_LENGTH) return `must be at most ${MAX_VAR_PATH_LENGTH} characters (got ${path.length})`
  if (!/^[A-Za-z0-9_.@-]+(\/[A-Za-z0-9_.@-]+)*$/.test(path)) {
    return `"${path}" must be segments of letters, digits, "_", "-", ".", "@" separated by single "/"`
  }
  return null
}
