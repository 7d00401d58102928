/**
 * Platform strings `os/arch[/variant]`, normalised like containerd's platforms package,
 * except that the default variants are spelled out: arm64 → `arm64/v8`, arm → `arm/v7`.
 */
import {InputError} from '../core/errors.js'
import type {Platform} from '../core/model.js'
import {closest} from './suggest.js'

export type {Platform} from '../core/model.js'

/** GOOS values (and containerd's accepted spellings). */
export const KNOWN_OS: readonly string[] = [
  'aix', 'android', 'darwin', 'dragonfly', 'freebsd', 'hurd', 'illumos', 'ios', 'js', 'linux', 'nacl', 'netbsd',
  'openbsd', 'plan9', 'solaris', 'wasip1', 'windows', 'zos',
]

/** GOARCH values. */
export const KNOWN_ARCH: readonly string[] = [
  '386', 'amd64', 'amd64p32', 'arm', 'armbe', 'arm64', 'arm64be', 'loong64', 'mips', 'mipsle', 'mips64', 'mips64le',
  'mips64p32', 'mips64p32le', 'ppc', 'ppc64', 'ppc64le', 'riscv', 'riscv64', 's390', 's390x', 'sparc', 'sparc64', 'wasm',
]

const OS_ALIASES: Record<string, string> = {macos: 'darwin'}
const ARCH_ALIASES: Record<string, string> = {
  i386: '386', i686: '386', x86: '386', x86_64: 'amd64', 'x86-64': 'amd64', x64: 'amd64', aarch64: 'arm64',
  armhf: 'arm', armel: 'arm', armv7: 'arm', armv7l: 'arm', armv6: 'arm', armv6l: 'arm', armv5: 'arm',
}

const VARIANT_RE = /^[a-z0-9][a-z0-9.]*$/

function bad(input: string, reason: string, suggestion?: string): InputError {
  return new InputError('platform.invalid', `invalid platform "${input}": ${reason}${suggestion ? `; did you mean ${suggestion}?` : ''}`)
}

/** containerd's normalizeArch, with default variants made explicit (arm64 → v8, arm → v7). */
function normalizeArch(arch: string, variant: string): [string, string] {
  arch = arch.toLowerCase()
  variant = variant.toLowerCase()
  switch (arch) {
    case 'i386':
    case 'i686':
    case 'x86':
      return ['386', '']
    case 'x86_64':
    case 'x86-64':
    case 'x64':
    case 'amd64':
      return ['amd64', variant === 'v1' ? '' : variant]
    case 'aarch64':
    case 'arm64':
      switch (variant) {
        case '':
        case '8':
        case 'v8':
        case 'v8.0':
          return ['arm64', 'v8']
        case '9':
        case '9.0':
        case 'v9.0':
          return ['arm64', 'v9']
        default:
          return ['arm64', /^\d/.test(variant) ? `v${variant}` : variant]
      }
    case 'armhf':
      return ['arm', 'v7']
    case 'armel':
      return ['arm', 'v6']
    case 'armv7':
    case 'armv7l':
      return ['arm', 'v7']
    case 'armv6':
    case 'armv6l':
      return ['arm', 'v6']
    case 'armv5':
      return ['arm', 'v5']
    case 'arm':
      switch (variant) {
        case '':
        case '7':
          return ['arm', 'v7']
        case '5':
        case '6':
        case '8':
          return ['arm', `v${variant}`]
        default:
          return ['arm', variant]
      }
    default:
      return [arch, variant]
  }
}

function normalizeOS(os: string): string {
  const l = os.toLowerCase()
  return OS_ALIASES[l] ?? l
}

function validVariant(arch: string, variant: string): boolean {
  if (variant === '') return true
  if (!VARIANT_RE.test(variant)) return false
  switch (arch) {
    case 'arm':
      return /^v[5-8]$/.test(variant)
    case 'arm64':
      return /^v(?:8|9)(?:\.[0-9])?$/.test(variant)
    case 'amd64':
      return /^v[1-4]$/.test(variant)
    default:
      return true
  }
}

/** Normalise a Platform object (lowercase, aliases, default variants). */
export function normalizePlatform(p: Platform): Platform {
  const os = normalizeOS(p.os)
  const [architecture, variant] = normalizeArch(p.architecture, p.variant ?? '')
  const out: Platform = {os, architecture}
  if (variant) out.variant = variant
  if (p['os.version']) out['os.version'] = p['os.version']
  if (p['os.features']) out['os.features'] = [...p['os.features']]
  return out
}

/** `os/arch[/variant]`. */
export function formatPlatform(p: Platform): string {
  return [p.os, p.architecture, p.variant].filter(Boolean).join('/')
}

function suggestFor(osIn: string | undefined, archIn: string, variantIn: string): string | undefined {
  const os = osIn === undefined ? 'linux' : KNOWN_OS.includes(normalizeOS(osIn)) ? normalizeOS(osIn) : closest(osIn, KNOWN_OS)
  const archCands = [...KNOWN_ARCH, ...Object.keys(ARCH_ALIASES)]
  const a = archIn.toLowerCase()
  const arch = KNOWN_ARCH.includes(a) || a in ARCH_ALIASES ? a : closest(a, archCands)
  if (!os || !arch) return undefined
  const [na, nv] = normalizeArch(arch, variantIn)
  return formatPlatform({os, architecture: na, variant: validVariant(na, nv) ? nv || undefined : normalizeArch(na, '')[1] || undefined})
}

/**
 * Parse and normalise `os/arch[/variant]` (also accepts a bare architecture such as `arm64`,
 * meaning linux). Throws InputError('platform.invalid') with a "did you mean" when it can.
 */
export function parsePlatform(input: string): Platform {
  if (typeof input !== 'string' || input.trim() === '') throw bad(String(input), 'empty platform')
  const s = input.trim()
  const parts = s.split('/')
  if (parts.length > 3 || parts.some((p) => p === '')) {
    throw bad(s, 'expected os/arch[/variant]', parts.length >= 2 ? suggestFor(parts[0], parts[1] ?? '', parts[2] ?? '') : undefined)
  }
  if (parts.length === 1) {
    const one = parts[0].toLowerCase()
    if (KNOWN_ARCH.includes(one) || one in ARCH_ALIASES) return normalizePlatform({os: 'linux', architecture: one})
    if (KNOWN_OS.includes(normalizeOS(one))) throw bad(s, 'an architecture is required (os/arch[/variant])', `${normalizeOS(one)}/amd64`)
    throw bad(s, 'expected os/arch[/variant]', suggestFor(undefined, one, ''))
  }
  const [osRaw, archRaw, variantRaw = ''] = parts
  const os = normalizeOS(osRaw)
  const archLower = archRaw.toLowerCase()
  // Swapped order: `amd64/linux`.
  if (!KNOWN_OS.includes(os) && KNOWN_OS.includes(normalizeOS(archRaw)) && (KNOWN_ARCH.includes(osRaw.toLowerCase()) || osRaw.toLowerCase() in ARCH_ALIASES)) {
    throw bad(s, 'the operating system comes first', suggestFor(archRaw, osRaw, variantRaw))
  }
  if (!KNOWN_OS.includes(os)) throw bad(s, `unknown operating system "${osRaw}"`, suggestFor(osRaw, archRaw, variantRaw))
  if (!KNOWN_ARCH.includes(archLower) && !(archLower in ARCH_ALIASES)) {
    throw bad(s, `unknown architecture "${archRaw}"`, suggestFor(os, archRaw, variantRaw))
  }
  const p = normalizePlatform({os, architecture: archLower, variant: variantRaw || undefined})
  if (!validVariant(p.architecture, p.variant ?? '')) {
    throw bad(s, `unknown variant "${variantRaw}" for ${p.architecture}`, formatPlatform(normalizePlatform({os, architecture: p.architecture})))
  }
  return p
}

/** parsePlatform + formatPlatform: `aarch64` → `linux/arm64/v8`. */
export function normalizePlatformString(s: string): string {
  return formatPlatform(parsePlatform(s))
}

function toPlatform(p: string | Platform): Platform {
  return typeof p === 'string' ? parsePlatform(p) : normalizePlatform(p)
}

/**
 * Does the platform `have` (e.g. from an image index) satisfy the wanted one? Both are normalised
 * first (so `linux/arm64` and `linux/arm64/v8` are the same). A wanted platform without a variant
 * matches any variant; with a variant the variants must be equal. `os.version` is not compared.
 */
export function platformMatches(want: string | Platform, have: string | Platform): boolean {
  let w: Platform
  let h: Platform
  try {
    w = toPlatform(want)
    h = toPlatform(have)
  } catch {
    return false
  }
  if (w.os !== h.os || w.architecture !== h.architecture) return false
  if (!w.variant) return true
  return w.variant === (h.variant ?? '')
}
