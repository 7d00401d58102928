/**
 * What long operations report to, passed in by the caller (the CLI draws bars or lines; library
 * code only calls these methods and never decides how progress looks).
 */
export interface Progress {
  begin(totalBytes: number, label: string): void
  advance(bytes: number): void
  /** One line about an image or step. */
  note(message: string): void
  end(): void
}

export const silentProgress: Progress = {begin() {}, advance() {}, note() {}, end() {}}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let v = n
  let u = 0
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024
    u++
  }
  return `${u === 0 ? v : v.toFixed(1)} ${units[u]}`
}
