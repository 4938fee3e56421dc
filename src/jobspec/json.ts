// JSON text handling for job files: parse errors with line and column, and
// detection of duplicate keys (which JSON.parse silently resolves to the last).

import type { PathSegment } from './errors.ts'

export interface Location {
  /** 1-based. */
  line: number
  /** 1-based, counted in UTF-16 code units like the rest of JavaScript. */
  column: number
}

export function locate(text: string, pos: number): Location {
  const p = Math.max(0, Math.min(pos, text.length))
  let line = 1
  let lineStart = 0
  for (let i = 0; i < p; i++) {
    if (text.charCodeAt(i) === 10) {
      line++
      lineStart = i + 1
    }
  }
  return { line, column: p - lineStart + 1 }
}

export interface DuplicateKey {
  /** Path of the repeated key itself. */
  path: PathSegment[]
  /** Offset of the repeated occurrence. */
  pos: number
}

export interface ScanResult {
  /** Offset of the first syntax error, when the text is not valid JSON. */
  errorPos?: number
  duplicates: DuplicateKey[]
}

class SyntaxStop {
  pos: number
  constructor(pos: number) {
    this.pos = pos
  }
}

/**
 * A strict JSON (RFC 8259) recogniser. It builds no values; it reports where the
 * first syntax error is and which object keys repeat. Gives up quietly (no error
 * position, duplicates found so far) on nesting too deep for the stack.
 */
export function scanJson(text: string): ScanResult {
  const duplicates: DuplicateKey[] = []
  let pos = 0

  const ws = () => {
    while (pos < text.length) {
      const c = text.charCodeAt(pos)
      if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) pos++
      else break
    }
  }
  const fail = (): never => {
    throw new SyntaxStop(pos)
  }
  const expect = (ch: string) => {
    if (text[pos] !== ch) fail()
    pos++
  }

  const string = (): string => {
    const start = pos
    expect('"')
    while (true) {
      if (pos >= text.length) fail()
      const c = text.charCodeAt(pos)
      if (c === 0x22) break
      if (c < 0x20) fail()
      if (c === 0x5c) {
        pos++
        const e = text[pos]
        if (e === 'u') {
          for (let k = 1; k <= 4; k++) {
            if (!/[0-9a-fA-F]/.test(text[pos + k] ?? '')) {
              pos += k
              fail()
            }
          }
          pos += 5
          continue
        }
        if (e === undefined || !'"\\/bfnrt'.includes(e)) fail()
      }
      pos++
    }
    pos++
    return JSON.parse(text.slice(start, pos)) as string
  }

  const digits = () => {
    const start = pos
    while (pos < text.length && text.charCodeAt(pos) >= 0x30 && text.charCodeAt(pos) <= 0x39) pos++
    if (pos === start) fail()
  }

  const number = () => {
    if (text[pos] === '-') pos++
    if (text[pos] === '0') pos++
    else digits()
    if (text[pos] === '.') {
      pos++
      digits()
    }
    if (text[pos] === 'e' || text[pos] === 'E') {
      pos++
      if (text[pos] === '+' || text[pos] === '-') pos++
      digits()
    }
  }

  const literal = (word: string) => {
    for (const ch of word) expect(ch)
  }

  const value = (path: PathSegment[]) => {
    ws()
    const c = text[pos]
    if (c === '{') {
      pos++
      ws()
      if (text[pos] === '}') {
        pos++
        return
      }
      const seen = new Set<string>()
      while (true) {
        ws()
        const keyPos = pos
        const key = string()
        if (seen.has(key)) duplicates.push({ path: [...path, key], pos: keyPos })
        seen.add(key)
        ws()
        expect(':')
        value([...path, key])
        ws()
        if (text[pos] === ',') {
          pos++
          continue
        }
        expect('}')
        return
      }
    }
    if (c === '[') {
      pos++
      ws()
      if (text[pos] === ']') {
        pos++
        return
      }
      for (let i = 0; ; i++) {
        value([...path, i])
        ws()
        if (text[pos] === ',') {
          pos++
          continue
        }
        expect(']')
        return
      }
    }
    if (c === '"') {
      string()
      return
    }
    if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) {
      number()
      return
    }
    if (c === 't') return literal('true')
    if (c === 'f') return literal('false')
    if (c === 'n') return literal('null')
    fail()
  }

  try {
    value([])
    ws()
    if (pos < text.length) fail()
  } catch (e) {
    if (e instanceof SyntaxStop) return { errorPos: e.pos, duplicates }
    if (e instanceof RangeError) return { duplicates }
    throw e
  }
  return { duplicates }
}

export type JsonParse =
  | { ok: true; value: unknown; duplicates: { path: PathSegment[]; location: Location }[] }
  | { ok: false; message: string; location: Location }

/**
 * JSON.parse, with the error located by line and column. Node reports a position
 * for most syntax errors but not all ("Unexpected token ..." carries a snippet,
 * "Unexpected end of JSON input" nothing); the scanner fills those in.
 */
export function parseJson(text: string): JsonParse {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (e) {
    const raw = e instanceof Error ? e.message : String(e)
    const reported = /\bat position (\d+)/.exec(raw)
    const pos = reported ? Number(reported[1]) : (scanJson(text).errorPos ?? text.length)
    return { ok: false, message: cleanMessage(raw), location: locate(text, pos) }
  }
  // A text JSON.parse accepts always scans cleanly; only duplicates are of interest.
  const duplicates = scanJson(text).duplicates.map((d) => ({ path: d.path, location: locate(text, d.pos) }))
  return { ok: true, value, duplicates }
}

/** Strips the position and the echoed snippet from V8's JSON.parse messages. */
function cleanMessage(raw: string): string {
  const token = /^(Unexpected token '[\s\S]*?'), [\s\S]* is not valid JSON$/.exec(raw)
  if (token) return token[1]
  return raw.replace(/(?: in JSON)? at position \d+(?: \(line \d+ column \d+\))?$/, '')
}
