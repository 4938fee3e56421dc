import { Command, Flags } from '@oclif/core'
import { ApiClient, ApiError } from '../api/client.ts'
import { API_FLAGS } from '../cli/api-flags.ts'
import { fail, reportApiError } from '../cli/output.ts'

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
    if (err instanceof ApiError) this.exit(reportApiError(err))
    return super.catch(err)
  }
}
