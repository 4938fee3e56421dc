import { Command, Flags } from '@oclif/core'
import { ApiClient, ApiError, DEFAULT_ADDRESS } from '../api/client.ts'

/** Prints `Error: message` unwrapped (oclif's own error() wraps long lines) and exits. */
export function fail(cmd: Command, message: string, code = 1): never {
  process.stderr.write(`Error: ${message}\n`)
  return cmd.exit(code)
}

/** Every command that talks to an agent: --address / SHOAL_ADDR, clear API errors. */
export abstract class ApiCommand extends Command {
  static override baseFlags = {
    address: Flags.string({
      env: 'SHOAL_ADDR', default: DEFAULT_ADDRESS, helpGroup: 'GLOBAL',
      description: 'HTTP address of a Shoal agent',
    }),
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
      const lines = err.errors.length > 1 ? err.errors.map((e) => `${e.field}: ${e.message}`) : [err.message]
      for (const line of lines) process.stderr.write(`Error: ${line}\n`)
      if (err.status === 409 && typeof err.body.modifyIndex === 'number') process.stderr.write(`Current modify index: ${err.body.modifyIndex}\n`)
      this.exit(err.status === 404 ? 4 : 1)
    }
    return super.catch(err)
  }
}
