import { Command, Flags } from '@oclif/core'
import { ApiClient, ApiError } from '../api/client.ts'
import { API_FLAGS } from '../cli/api-flags.ts'
import { fail, reportApiError, reportedErrors, type ReportedError } from '../cli/output.ts'

/** Every command that talks to an agent: --address / SHOAL_ADDR, clear API errors. */
export abstract class ApiCommand extends Command {
  static override baseFlags = {
    address: Flags.string({ env: API_FLAGS.address.env, default: API_FLAGS.address.default, helpGroup: 'GLOBAL', description: API_FLAGS.address.description }),
  }

  #api: ApiClient | undefined

  protected api(address: string): ApiClient {
    try {
      this.#api ??= new ApiClient(address)
    } catch (err) {
      fail(this, (err as Error).message)
    }
    return this.#api
  }

  protected override async catch(err: Error & { exitCode?: number }): Promise<unknown> {
    if (err instanceof ApiError) {
      const code = reportApiError(err)
      if (this.jsonEnabled()) this.logJson(errorJson(code))
      this.exit(code)
    }
    return super.catch(err)
  }

  /** --json, after the command exited with problems printed (fail()): those, not oclif's "EEXIT: n". */
  protected override toErrorJson(err: unknown): unknown {
    const exitCode = (err as { oclif?: { exit?: number } } | undefined)?.oclif?.exit
    return exitCode !== undefined && reportedErrors().length > 0 ? errorJson(exitCode) : super.toErrorJson(err)
  }
}

/** What --json prints for a command that failed: the problems it printed on stderr, with their fields, and its exit code. */
function errorJson(exitCode: number): { error: { message: string; errors: readonly ReportedError[]; exitCode: number } } {
  const errors = reportedErrors()
  return { error: { message: errors.map((e) => (e.field ? `${e.field}: ${e.message}` : e.message)).join('\n'), errors, exitCode } }
}
