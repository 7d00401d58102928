/**
 * TOML basic strings: the only TOML values the generated files need besides booleans and arrays
 * of strings. Every control character (DEL included) is escaped, as TOML requires.
 */
export function tomlString(s: string): string {
  let out = '"'
  for (const ch of s) {
    const c = ch.codePointAt(0)!
    if (ch === '"' || ch === '\\') out += `\\${ch}`
    else if (c < 0x20 || c === 0x7f) out += `\\u${c.toString(16).padStart(4, '0')}`
    else out += ch
  }
  return `${out}"`
}

export function tomlStrings(list: string[]): string {
  return `[${list.map(tomlString).join(', ')}]`
}
