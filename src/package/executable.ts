/**
 * The single executable (Node's single-executable application, scripts/build-sea.mjs): whether
 * this process is one, and what a target needs to run a node binary.
 */
import {readFile} from 'node:fs/promises'

/** The single executable this process runs as, or undefined when it runs on an installed Node. */
export async function runningExecutable(): Promise<string | undefined> {
  try {
    const sea = await import('node:sea')
    return sea.isSea() ? process.execPath : undefined
  } catch {
    return undefined // a Node without node:sea (before 20.12) runs no single executable either
  }
}

export interface LibcRequirement {
  /** highest GLIBC_ symbol version the binary needs, e.g. "2.28" */
  glibc?: string
  /** highest GLIBCXX_ (libstdc++) symbol version, e.g. "3.4.21" */
  glibcxx?: string
}

/**
 * The C library a node binary (or an executable made from one) needs on the target: the highest
 * GLIBC_ and GLIBCXX_ versions among the version names in its dynamic string table.
 */
export async function libcRequirement(binary: string): Promise<LibcRequirement> {
  const text = (await readFile(binary)).toString('latin1')
  const highest = (re: RegExp, prefix: string) => [...new Set(text.match(re) ?? [])]
    .sort((a, b) => a.localeCompare(b, 'en', {numeric: true})).at(-1)?.slice(prefix.length)
  return {glibc: highest(/(?<=\0)GLIBC_2\.\d+(?:\.\d+)?(?=\0)/g, 'GLIBC_'), glibcxx: highest(/(?<=\0)GLIBCXX_3\.4(?:\.\d+)?(?=\0)/g, 'GLIBCXX_')}
}

/** "glibc >= 2.28, libstdc++ >= GLIBCXX_3.4.21", or "" when nothing was found (not an ELF for glibc). */
export function describeLibc(r: LibcRequirement): string {
  return [r.glibc && `glibc >= ${r.glibc}`, r.glibcxx && `libstdc++ with GLIBCXX_${r.glibcxx}`].filter(Boolean).join(', ')
}
