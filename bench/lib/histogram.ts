// Latency histogram: log-linear buckets (~1% wide) from 1 µs to ~1 h, so
// percentiles are accurate to about 1% without keeping every sample.

const GROWTH = 1.01
const LOG_GROWTH = Math.log(GROWTH)
const BUCKETS = Math.ceil(Math.log(3.6e9) / LOG_GROWTH) + 1 // µs up to one hour

export class Histogram {
  readonly counts = new Uint32Array(BUCKETS)
  count = 0
  maxUs = 0
  sumUs = 0

  /** Records one latency in milliseconds. */
  record(ms: number): void {
    const us = Math.max(1, ms * 1000)
    const i = Math.min(BUCKETS - 1, Math.floor(Math.log(us) / LOG_GROWTH))
    this.counts[i]!++
    this.count++
    this.sumUs += us
    if (us > this.maxUs) this.maxUs = us
  }

  /** The q-quantile (0..1) in milliseconds: the upper edge of its bucket, capped at the max seen. */
  quantile(q: number): number {
    if (this.count === 0) return NaN
    const rank = Math.max(1, Math.ceil(q * this.count))
    let seen = 0
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i]!
      if (seen >= rank) return Math.min(GROWTH ** (i + 1), this.maxUs) / 1000
    }
    return this.maxUs / 1000
  }

  get meanMs(): number {
    return this.count === 0 ? NaN : this.sumUs / this.count / 1000
  }

  get maxMs(): number {
    return this.maxUs / 1000
  }
}
