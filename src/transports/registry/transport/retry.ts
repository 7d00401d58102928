/**
 * The retry policy of the registry transport: exponential backoff with jitter, a cap per delay
 * and one for the whole operation, `Retry-After` honoured. A failure worth retrying travels as a
 * `Retryable` carrying the error to throw once the budget is spent.
 */

export interface RetryPolicy {
  /** Retries after the first attempt (default 5). */
  retries: number
  /** First backoff delay in ms (default 500); doubles each retry, with jitter. */
  baseDelayMs: number
  /** Cap for one delay (default 30 s). */
  maxDelayMs: number
  /** Cap for the sum of all delays of one operation (default 120 s). */
  maxTotalWaitMs: number
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = {retries: 5, baseDelayMs: 500, maxDelayMs: 30_000, maxTotalWaitMs: 120_000}

/** What a retry reports before it waits (the client's `onRetry`). */
export interface RetryInfo {
  /** 1 for the first retry. */
  attempt: number
  retries: number
  delayMs: number
  /** e.g. "HTTP 503", "ECONNRESET". */
  reason: string
  method: string
  /** URL without credentials (registry URLs never carry any). */
  url: string
}

/** The retry knobs of the client options; unset ones take DEFAULT_RETRY_POLICY. */
export interface RetryOptions {
  /** Retries after the first attempt (default 5). */
  retries?: number
  /** First backoff delay, ms (default 500). */
  retryBaseDelayMs?: number
  /** Cap for one backoff delay, ms (default 30 000). */
  retryMaxDelayMs?: number
  /** Cap for the sum of backoff delays of one operation, ms (default 120 000). */
  maxRetryWaitMs?: number
}

export function retryPolicyOf(o: RetryOptions): RetryPolicy {
  return {
    retries: o.retries ?? DEFAULT_RETRY_POLICY.retries,
    baseDelayMs: o.retryBaseDelayMs ?? DEFAULT_RETRY_POLICY.baseDelayMs,
    maxDelayMs: o.retryMaxDelayMs ?? DEFAULT_RETRY_POLICY.maxDelayMs,
    maxTotalWaitMs: o.maxRetryWaitMs ?? DEFAULT_RETRY_POLICY.maxTotalWaitMs,
  }
}

/** Thrown inside one attempt for a failure worth retrying; `final` is thrown when retries run out. */
export class Retryable extends Error {
  constructor(
    readonly reason: string,
    readonly final: Error,
    readonly retryAfterMs?: number,
  ) {
    super(reason)
  }
}

export class Backoff {
  attempt = 0
  waited = 0
  constructor(private readonly p: RetryPolicy) {}

  /** The delay before the next retry, or undefined when the budget is spent. */
  next(retryAfterMs?: number): number | undefined {
    if (this.attempt >= this.p.retries) return undefined
    const exp = Math.min(this.p.maxDelayMs, this.p.baseDelayMs * 2 ** this.attempt)
    let delay = exp / 2 + Math.random() * (exp / 2)
    if (retryAfterMs !== undefined && retryAfterMs > delay) delay = Math.min(retryAfterMs, this.p.maxTotalWaitMs)
    if (this.waited + delay > this.p.maxTotalWaitMs) return undefined
    this.attempt++
    this.waited += delay
    return Math.round(delay)
  }

  reset(): void {
    this.attempt = 0
    this.waited = 0
  }
}

/** `Retry-After` as milliseconds (delta-seconds or HTTP date), or undefined. */
export function parseRetryAfter(v: string | string[] | undefined): number | undefined {
  const s = Array.isArray(v) ? v[0] : v
  if (!s) return undefined
  if (/^\d+$/.test(s.trim())) return Number(s.trim()) * 1000
  const t = Date.parse(s)
  if (Number.isNaN(t)) return undefined
  return Math.max(0, t - Date.now())
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms))
}
