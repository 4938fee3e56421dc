import { isNodeId } from './confchange.ts'
import type { ConfState, Entry, EntryType, Message, Snapshot } from './types.ts'

// Guards for untrusted input (bytes decoded from a peer). Raft is not
// Byzantine fault tolerant, but a buggy or incompatible peer must not be able
// to crash a node or corrupt its in-memory structures with ill-typed data.

/**
 * Largest term/index accepted from the network. 2^48 is ~9000 years of one
 * election per millisecond, and keeps term+1 and index arithmetic exact.
 */
export const MAX_TERM = 2 ** 48
export const MAX_INDEX = 2 ** 48

const ENTRY_TYPES: readonly EntryType[] = ['normal', 'confChange', 'noop']

type Obj = Record<string, unknown>

function isObj(x: unknown): x is Obj {
  return typeof x === 'object' && x !== null && !Array.isArray(x)
}

function isNat(x: unknown, max: number): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= 0 && x <= max
}

function isBool(x: unknown): x is boolean {
  return typeof x === 'boolean'
}

export function validateEntry(x: unknown): Entry | Error {
  if (!isObj(x)) return new Error('entry: not an object')
  if (!isNat(x.index, MAX_INDEX) || x.index === 0) return new Error('entry: bad index')
  if (!isNat(x.term, MAX_TERM) || x.term === 0) return new Error('entry: bad term')
  if (typeof x.type !== 'string' || !(ENTRY_TYPES as readonly string[]).includes(x.type)) {
    return new Error('entry: bad type')
  }
  if (!(x.data instanceof Uint8Array)) return new Error('entry: data is not bytes')
  return { index: x.index, term: x.term, type: x.type as EntryType, data: x.data }
}

function validateIdList(x: unknown): string[] | Error {
  if (!Array.isArray(x)) return new Error('not an array')
  if (x.length > 10_000) return new Error('too many members')
  for (const id of x) if (!isNodeId(id)) return new Error('bad node id')
  return x as string[]
}

export function validateConfState(x: unknown): ConfState | Error {
  if (!isObj(x)) return new Error('conf: not an object')
  const voters = validateIdList(x.voters)
  if (voters instanceof Error) return new Error(`conf.voters: ${voters.message}`)
  const learners = validateIdList(x.learners)
  if (learners instanceof Error) return new Error(`conf.learners: ${learners.message}`)
  return { voters: [...voters], learners: [...learners] }
}

export function validateSnapshot(x: unknown): Snapshot | Error {
  if (!isObj(x)) return new Error('snapshot: not an object')
  if (!(x.data instanceof Uint8Array)) return new Error('snapshot: data is not bytes')
  const meta = x.meta
  if (!isObj(meta)) return new Error('snapshot: meta is not an object')
  if (!isNat(meta.index, MAX_INDEX)) return new Error('snapshot: bad index')
  if (!isNat(meta.term, MAX_TERM)) return new Error('snapshot: bad term')
  if ((meta.index === 0) !== (meta.term === 0)) return new Error('snapshot: index/term mismatch')
  const conf = validateConfState(meta.conf)
  if (conf instanceof Error) return new Error(`snapshot: ${conf.message}`)
  return { meta: { index: meta.index, term: meta.term, conf }, data: x.data }
}

/**
 * Checks that `x` is a well-formed Message and returns a fresh object holding
 * only the known fields (so extra/prototype junk never reaches the core).
 * Semantic checks that need local state (membership, terms) are done by step().
 */
export function validateMessage(x: unknown): Message | Error {
  if (!isObj(x)) return new Error('message: not an object')
  const { type, from, to, term } = x
  if (typeof type !== 'string') return new Error('message: missing type')
  if (!isNodeId(from)) return new Error('message: bad from')
  if (!isNodeId(to)) return new Error('message: bad to')
  if (!isNat(term, MAX_TERM)) return new Error('message: bad term')
  switch (type) {
    case 'appendEntries': {
      const { prevLogIndex, prevLogTerm, commit, entries } = x
      if (!isNat(prevLogIndex, MAX_INDEX)) return new Error('appendEntries: bad prevLogIndex')
      if (!isNat(prevLogTerm, MAX_TERM) || prevLogTerm > term) return new Error('appendEntries: bad prevLogTerm')
      if (!isNat(commit, MAX_INDEX)) return new Error('appendEntries: bad commit')
      if (!Array.isArray(entries)) return new Error('appendEntries: entries is not an array')
      const out: Entry[] = []
      let lastTerm = prevLogTerm
      for (let i = 0; i < entries.length; i++) {
        const e = validateEntry(entries[i])
        if (e instanceof Error) return new Error(`appendEntries: ${e.message}`)
        // Entries must extend prevLogIndex contiguously with non-decreasing
        // terms no newer than the sender's term; anything else is not a log.
        if (e.index !== prevLogIndex + 1 + i) return new Error('appendEntries: entries not contiguous')
        if (e.term < lastTerm || e.term > term) return new Error('appendEntries: bad entry term order')
        lastTerm = e.term
        out.push(e)
      }
      return { type, from, to, term, prevLogIndex, prevLogTerm, commit, entries: out }
    }
    case 'appendEntriesResponse': {
      const { success, index, hintIndex, hintTerm } = x
      if (!isBool(success)) return new Error('appendEntriesResponse: bad success')
      if (!isNat(index, MAX_INDEX)) return new Error('appendEntriesResponse: bad index')
      if (!isNat(hintIndex, MAX_INDEX)) return new Error('appendEntriesResponse: bad hintIndex')
      if (!isNat(hintTerm, MAX_TERM)) return new Error('appendEntriesResponse: bad hintTerm')
      return { type, from, to, term, success, index, hintIndex, hintTerm }
    }
    case 'heartbeat': {
      const { commit, context } = x
      if (!isNat(commit, MAX_INDEX)) return new Error('heartbeat: bad commit')
      if (!isNat(context, Number.MAX_SAFE_INTEGER)) return new Error('heartbeat: bad context')
      return { type, from, to, term, commit, context }
    }
    case 'heartbeatResponse': {
      const { context } = x
      if (!isNat(context, Number.MAX_SAFE_INTEGER)) return new Error('heartbeatResponse: bad context')
      return { type, from, to, term, context }
    }
    case 'requestVote': {
      const { lastLogIndex, lastLogTerm, preVote, transfer } = x
      if (!isNat(lastLogIndex, MAX_INDEX)) return new Error('requestVote: bad lastLogIndex')
      if (!isNat(lastLogTerm, MAX_TERM)) return new Error('requestVote: bad lastLogTerm')
      if (!isBool(preVote) || !isBool(transfer)) return new Error('requestVote: bad flags')
      return { type, from, to, term, lastLogIndex, lastLogTerm, preVote, transfer }
    }
    case 'requestVoteResponse': {
      const { preVote, granted } = x
      if (!isBool(preVote) || !isBool(granted)) return new Error('requestVoteResponse: bad flags')
      return { type, from, to, term, preVote, granted }
    }
    case 'installSnapshot': {
      const snapshot = validateSnapshot(x.snapshot)
      if (snapshot instanceof Error) return new Error(`installSnapshot: ${snapshot.message}`)
      if (snapshot.meta.index === 0) return new Error('installSnapshot: empty snapshot')
      if (snapshot.meta.term > term) return new Error('installSnapshot: snapshot from the future')
      return { type, from, to, term, snapshot }
    }
    case 'timeoutNow':
      return { type, from, to, term }
    default:
      return new Error(`message: unknown type ${JSON.stringify(type).slice(0, 40)}`)
  }
}
