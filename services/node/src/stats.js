// Per-action counters for the Describe catalogue, as the Go runtime's
// stats.go: counts, errors by code, in flight, and a latency histogram of
// powers of two microseconds.

const BUCKETS = 32;

/**
 * @param {number} ms
 */
function duration(ms) {
  const nanosTotal = BigInt(Math.round(ms * 1e6));
  return { seconds: nanosTotal / 1000000000n, nanos: Number(nanosTotal % 1000000000n) };
}

/** ActionStats are one action's counters. */
export class ActionStats {
  constructor() {
    this.count = 0;
    this.errors = 0;
    this.coalesced = 0;
    this.inFlight = 0;
    this.totalMs = 0;
    this.maxMs = 0;
    this.buckets = new Array(BUCKETS).fill(0);
    /** @type {Map<string, number>} */
    this.byCode = new Map();
  }

  /**
   * observe records one handler run.
   * @param {number} ms
   * @param {string} [code] the error's code; none when it succeeded
   */
  observe(ms, code) {
    this.count++;
    this.totalMs += ms;
    this.maxMs = Math.max(this.maxMs, ms);
    const us = Math.floor(ms * 1000);
    const b = us <= 0 ? 0 : Math.min(Math.floor(Math.log2(us)) + 1, BUCKETS - 1);
    this.buckets[b]++;
    if (code) {
      this.errors++;
      this.byCode.set(code, (this.byCode.get(code) ?? 0) + 1);
    }
  }

  /**
   * @param {number} q
   * @returns {number} ms
   */
  quantile(q) {
    if (this.count === 0) {
      return 0;
    }
    const rank = Math.floor(q * this.count);
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.buckets[i];
      if (seen > rank) {
        return Math.min(2 ** i / 1000, this.maxMs);
      }
    }
    return this.maxMs;
  }

  /** The counters as the Describe catalogue shows them (an ActionStats init). */
  snapshot() {
    return {
      count: BigInt(this.count),
      errors: BigInt(this.errors),
      inFlight: BigInt(this.inFlight),
      coalesced: BigInt(this.coalesced),
      latencyMean: duration(this.count > 0 ? this.totalMs / this.count : 0),
      latencyP50: duration(this.quantile(0.5)),
      latencyP99: duration(this.quantile(0.99)),
      latencyMax: duration(this.maxMs),
      errorsByCode: Object.fromEntries([...this.byCode].map(([c, n]) => [c, BigInt(n)])),
    };
  }
}

export { duration };
