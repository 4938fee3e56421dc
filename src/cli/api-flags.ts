import { DEFAULT_ADDRESS } from '../api/client.ts'
import type { FlagSpec } from './flags.ts'

/** The flags of every command that talks to an agent. */
export const API_FLAGS = {
  address: { type: 'string', env: 'SHOAL_ADDR', default: DEFAULT_ADDRESS, description: 'HTTP address of a Shoal agent' },
} as const satisfies Record<string, FlagSpec>
