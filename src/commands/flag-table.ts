import { Flags, type Interfaces } from '@oclif/core'
import type { FlagSpec, FlagsOf } from '../cli/flags.ts'

/** oclif's flag for an entry of a flag table (see src/cli/flags.ts). */
function oclifFlag(spec: FlagSpec) {
  const { description } = spec
  switch (spec.type) {
    case 'boolean':
      return Flags.boolean({ description, default: spec.default })
    case 'integer':
      return Flags.integer({ description, ...(spec.default !== undefined ? { default: spec.default } : {}), ...(spec.min !== undefined ? { min: spec.min } : {}) })
    case 'string':
      if (spec.multiple) return Flags.string({ description, multiple: true, default: spec.default })
      return Flags.string({ description, ...(spec.default !== undefined ? { default: spec.default } : {}), ...(spec.env !== undefined ? { env: spec.env } : {}) })
  }
}

/** oclif's flags for a whole flag table, typed so that oclif parses them to what parsePlainArgs gives. */
export function oclifFlags<T extends Record<string, FlagSpec>>(table: T): Interfaces.FlagInput<FlagsOf<T>> {
  return Object.fromEntries(Object.entries(table).map(([name, spec]) => [name, oclifFlag(spec)])) as Interfaces.FlagInput<FlagsOf<T>>
}
