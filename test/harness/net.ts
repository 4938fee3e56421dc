// Real network partitions between agents on loopback addresses, with
// iptables (root). Agents dial from their --bind address, so rules by
// address cut exactly the links between two groups.
import { execFileSync } from 'node:child_process'

export class Partitions {
  readonly #rules: string[][] = []

  /** Drops every packet between any address of `a` and any of `b`, both ways. */
  cut(a: readonly string[], b: readonly string[]): void {
    for (const x of a) {
      for (const y of b) {
        for (const [s, d] of [[x, y], [y, x]] as const) {
          const rule = ['INPUT', '-s', s, '-d', d, '-j', 'DROP']
          execFileSync('iptables', ['-I', ...rule])
          this.#rules.push(rule)
        }
      }
    }
  }

  /** Removes every rule this instance added. */
  heal(): void {
    while (this.#rules.length > 0) {
      const rule = this.#rules.pop()!
      try {
        execFileSync('iptables', ['-D', ...rule])
      } catch {
        // already gone
      }
    }
  }
}

/** Fails with a clear message when iptables cannot be used (not root, no binary). */
export function requireIptables(): void {
  try {
    execFileSync('iptables', ['-L', 'INPUT', '-n'], { stdio: 'pipe' })
  } catch (err) {
    throw new Error(`partition tests need iptables as root: ${(err as Error).message}`)
  }
}
