/**
 * `metadata.expires`: an RFC 3339 date/time, or a duration after the bundle's creation
 * (`48h`, `90d`, `12w`, `1y`).
 */
import {InputError} from '../core/errors.js'

export const EXPIRES_DURATION_RE = /^([1-9][0-9]{0,5})([hdwy])$/
export const RFC3339_RE = /^(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2}))?$/

/** A real date/time in RFC 3339 (or a plain date, midnight UTC), else undefined. */
export function parseRfc3339(s: string): Date | undefined {
  const m = RFC3339_RE.exec(s)
  if (!m) return undefined
  const [, y, mo, d, h = '00', mi = '00', sec = '00', frac = '', tz = 'Z'] = m
  const year = Number(y)
  const month = Number(mo)
  const day = Number(d)
  if (month < 1 || month > 12 || day < 1) return undefined
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate()
  if (day > daysInMonth) return undefined
  if (Number(h) > 23 || Number(mi) > 59 || Number(sec) > 60) return undefined
  if (tz !== 'Z' && tz !== 'z') {
    const [th, tm] = tz.slice(1).split(':').map(Number)
    if (th > 23 || tm > 59) return undefined
  }
  const iso = `${y}-${mo}-${d}T${h}:${mi}:${Math.min(Number(sec), 59).toString().padStart(2, '0')}${frac}${tz.toUpperCase()}`
  const t = Date.parse(iso)
  return Number.isNaN(t) ? undefined : new Date(t)
}

/**
 * The absolute expiry time of a bundle: `expires` is an RFC 3339 date/time, or a duration after
 * `created` (`48h`, `90d`, `12w`, `1y`). Undefined when there is no expiry. Throws InputError when invalid.
 */
export function resolveExpiry(expires: string | undefined, created: Date): Date | undefined {
  if (expires === undefined || expires === '') return undefined
  const m = EXPIRES_DURATION_RE.exec(expires)
  if (m) {
    const n = Number(m[1])
    const t = new Date(created.getTime())
    switch (m[2]) {
      case 'h':
        return new Date(t.getTime() + n * 3_600_000)
      case 'd':
        return new Date(t.getTime() + n * 86_400_000)
      case 'w':
        return new Date(t.getTime() + n * 7 * 86_400_000)
      default:
        t.setUTCFullYear(t.getUTCFullYear() + n)
        return t
    }
  }
  const d = parseRfc3339(expires)
  if (!d) {
    throw new InputError('spec.expires_invalid', `invalid expires "${expires}": use an RFC 3339 date/time (2027-12-31T00:00:00Z) or a duration such as 90d, 12w, 1y`)
  }
  return d
}
