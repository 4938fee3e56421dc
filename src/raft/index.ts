// Public surface of the Raft core. See core.ts for the driving contract.
export { RaftCore } from './core.ts'
export type { RaftConfig, RaftStatus, ProgressStatus } from './core.ts'
export { RaftLog } from './log.ts'
export { Progress } from './progress.ts'
export type { ProgressState } from './progress.ts'
export { validateMessage, validateEntry, validateSnapshot, validateConfState, MAX_TERM, MAX_INDEX } from './validate.ts'
export {
  encodeConfChange, decodeConfChange, applyConfChange, checkConfChange, normalizeConf, quorum,
} from './confchange.ts'
export { seededRandom, hashString } from './random.ts'
export type { Random } from './random.ts'
export * from './types.ts'
