// `shoal job run`: submit a job file, then follow its evaluation and deployment.
// bin/shoal.js runs a plain command line of it without @oclif/core, whose
// loading would take ~60 ms on the way to the container; --json, help and
// errors in the command line go through oclif (src/commands/job/run.ts).
import { ApiClient, ApiError } from '../api/client.ts'
import { API_FLAGS } from './api-flags.ts'
import { parsePlainArgs, type FlagSpec, type FlagsOf } from './flags.ts'
import { failWithFileErrors, jobFileErrors, readJobText } from './job-file.ts'
import { runPlain, type CommandIO } from './output.ts'

export const JOB_RUN_FLAGS = {
  detach: { type: 'boolean', description: 'return once the job is submitted', default: false },
  'check-index': { type: 'integer', description: 'register only if the job\'s modify index is N (0: only if it does not exist yet)', min: 0 },
  timeout: { type: 'integer', description: 'seconds to wait for the evaluation (and, for jobs without a deployment, for allocations to start)', default: 60, min: 1 },
} as const satisfies Record<string, FlagSpec>

export type JobRunFlags = FlagsOf<typeof JOB_RUN_FLAGS> & FlagsOf<typeof API_FLAGS>

/** Submits the job file and follows it; what `--json` prints. */
export async function runJob(io: CommandIO, file: string, flags: JobRunFlags, json: boolean): Promise<unknown> {
  const text = readJobText(io, file)
  const api = new ApiClient(flags.address)
  const q = flags['check-index'] !== undefined ? `?check_index=${flags['check-index']}` : ''
  // The file goes to the agent as it is, and the agent checks it (its errors
  // name field, line and column): the way to a running container waits
  // neither on loading the validator here nor on the monitor.
  const submitted = await api.postText<{ jobId: string; evalId: string; version: number }>(`/v1/jobs${q}`, text)
    .catch((err: unknown) => refused(io, err, text))
  io.log(`==> Job "${submitted.jobId}" version ${submitted.version} submitted; evaluation ${submitted.evalId}`)
  if (flags.detach) return submitted
  const { followSubmission } = await import('./monitor.ts')
  const result = await followSubmission(io, api, submitted, flags.timeout, json)
  return { ...submitted, allocations: result.allocations, ...(result.deployment ? { deployment: result.deployment } : {}) }
}

/** A submission that failed: problems in the file end the command as the file's, else the error goes on. */
async function refused(io: CommandIO, err: unknown, text: string): Promise<never> {
  if (!(err instanceof ApiError)) throw err
  if (err.status === 0) {
    // No agent to check the file: its problems still come before the connection's.
    const errors = await jobFileErrors(text)
    if (errors.length > 0) failWithFileErrors(io, errors)
  } else if (err.status === 400 && err.errors.length > 0) {
    // The body the agent speaks of is the file.
    failWithFileErrors(io, err.errors.map((e) => (e.field === 'body' ? { ...e, field: 'file' } : e)))
  }
  throw err
}

/** bin/shoal.js's way to `shoal job run` without oclif: false when oclif should parse the command line. */
export async function jobRunMain(argv: readonly string[]): Promise<boolean> {
  const parsed = parsePlainArgs({ ...API_FLAGS, ...JOB_RUN_FLAGS }, argv, 1)
  const file = parsed?.args[0]
  if (!parsed || file === undefined) return false
  await runPlain((io) => runJob(io, file, parsed.flags, false))
  return true
}
