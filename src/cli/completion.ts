/**
 * Shell completion scripts for bash and zsh, generated from the commands and flags oclif knows
 * (the manifest): command names (space separated, topics included), each command's flags, the
 * values of an argument that has a fixed list, and file names everywhere else.
 */

export interface CompletionFlag {
  name: string
  char?: string
  summary: string
  /** Takes a value (`--to X`); else a switch. */
  value: boolean
  multiple: boolean
}

export interface CompletionCommand {
  /** Words as typed: `key generate`. */
  id: string
  summary: string
  flags: CompletionFlag[]
  /** The first argument's fixed values, if it has them (`completion bash|zsh`). */
  argOptions?: readonly string[]
}

/** A command as oclif describes it (oclif.manifest.json, config.commands): what completion needs. */
export interface ManifestCommand {
  id: string
  hidden?: boolean
  summary?: string
  description?: string
  flags: Record<string, {name: string; char?: string; summary?: string; description?: string; type: 'boolean' | 'option'; multiple?: boolean; hidden?: boolean}>
  args: Record<string, {options?: readonly string[]}>
}

/** The visible commands and flags, ids written with `separator` between words (oclif ids use `:`). */
export function completionCommands(commands: Iterable<ManifestCommand>, separator = ' '): CompletionCommand[] {
  const out: CompletionCommand[] = []
  for (const c of commands) {
    if (c.hidden) continue
    const options = Object.values(c.args)[0]?.options
    out.push({
      id: c.id.split(':').join(separator),
      summary: c.summary ?? c.description ?? '',
      flags: Object.values(c.flags).filter((f) => !f.hidden).map((f) => ({
        name: f.name, ...(f.char ? {char: f.char} : {}), summary: f.summary ?? f.description ?? '', value: f.type === 'option', multiple: f.type === 'option' && f.multiple === true,
      })),
      ...(options ? {argOptions: options} : {}),
    })
  }
  return out
}

export const SHELLS = ['bash', 'zsh'] as const
export type Shell = (typeof SHELLS)[number]

/** Single-quoted for sh: nothing inside is expanded. */
function q(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`
}

/** One short line of help text. */
function oneLine(s: string): string {
  const line = s.split('\n')[0].trim()
  return line.length > 80 ? `${line.slice(0, 77)}...` : line
}

/** Every prefix of the command ids that is a command or a topic (`key`, `key generate`, `verify`). */
function knownWords(commands: readonly CompletionCommand[]): string[] {
  const out = new Set<string>()
  for (const c of commands) {
    const w = c.id.split(' ')
    for (let i = 1; i <= w.length; i++) out.add(w.slice(0, i).join(' '))
  }
  return [...out].sort()
}

/** The next words after `prefix` ('' for the top level): subcommands and topics, with a summary. */
function nextWords(prefix: string, commands: readonly CompletionCommand[], topics: ReadonlyMap<string, string>): [string, string][] {
  const depth = prefix === '' ? 0 : prefix.split(' ').length
  const out = new Map<string, string>()
  for (const id of knownWords(commands)) {
    const w = id.split(' ')
    if (w.length !== depth + 1 || (prefix !== '' && !id.startsWith(`${prefix} `))) continue
    out.set(w[depth], commands.find((c) => c.id === id)?.summary ?? topics.get(id) ?? '')
  }
  return [...out.entries()]
}

function flagWords(c: CompletionCommand): string[] {
  return c.flags.flatMap((f) => [`--${f.name}`, ...(f.char ? [`-${f.char}`] : [])])
}

/**
 * The completion script for `shell`; `bin` is the program name. Add to the shell's startup file:
 * `eval "$(airlock completion bash)"` (bash), `eval "$(airlock completion zsh)"` after compinit (zsh).
 */
export function completionScript(shell: Shell, bin: string, commands: readonly CompletionCommand[], topics: ReadonlyMap<string, string> = new Map()): string {
  const fn = `_${bin.replace(/[^A-Za-z0-9_]/g, '_')}_completion`
  const known = knownWords(commands).map(q).join('|')
  const prefixes = ['', ...knownWords(commands).filter((id) => !commands.some((c) => c.id === id))]
  return shell === 'bash' ? bashScript(fn, bin, known, prefixes, commands, topics) : zshScript(fn, bin, known, prefixes, commands, topics)
}

function bashScript(fn: string, bin: string, known: string, prefixes: string[], commands: readonly CompletionCommand[], topics: ReadonlyMap<string, string>): string {
  const cases = [
    ...prefixes.map((p) => `    ${q(p)}) COMPREPLY=($(compgen -W ${q(nextWords(p, commands, topics).map(([w]) => w).join(' '))} -- "$cur")) ;;`),
    ...commands.map((c) => `    ${q(c.id)}) if [[ $cur == -* ]]; then COMPREPLY=($(compgen -W ${q(flagWords(c).join(' '))} -- "$cur"))${c.argOptions ? `; elif [[ $i == "$COMP_CWORD" ]]; then COMPREPLY=($(compgen -W ${q(c.argOptions.join(' '))} -- "$cur"))` : ''}; fi ;;`),
  ]
  return `# bash completion for ${bin}; in ~/.bashrc: eval "$(${bin} completion bash)"
${fn}() {
  local cur=\${COMP_WORDS[COMP_CWORD]} cmd='' i w
  # The command: the longest run of leading words that names one (or a topic).
  for ((i = 1; i < COMP_CWORD; i++)); do
    w=\${COMP_WORDS[i]}
    case "\${cmd:+$cmd }$w" in
      ${known}) cmd=\${cmd:+$cmd }$w ;;
      *) break ;;
    esac
  done
  COMPREPLY=()
  case "$cmd" in
${cases.join('\n')}
  esac
}
complete -o default -F ${fn} ${bin}
`
}

/** A zsh _arguments spec of one flag (`*`: may repeat; else the short and long names exclude each other). */
function zshFlag(f: CompletionFlag): string {
  const tail = `[${oneLine(f.summary).replace(/([[\]\\])/g, '\\$1')}]${f.value ? ':value:_files' : ''}`
  const eq = f.value ? '=' : ''
  if (!f.char) return q(`${f.multiple ? '*' : ''}--${f.name}${eq}${tail}`)
  return `${q(f.multiple ? '*' : `(-${f.char} --${f.name})`)}{-${f.char},--${f.name}${eq}}${q(tail)}`
}

function zshScript(fn: string, bin: string, known: string, prefixes: string[], commands: readonly CompletionCommand[], topics: ReadonlyMap<string, string>): string {
  const describe = (p: string) => {
    const items = nextWords(p, commands, topics).map(([w, s]) => q(`${w}:${oneLine(s).replace(/:/g, '\\:')}`)).join(' ')
    return `    ${q(p)}) subs=(${items}); _describe -t commands ${q(`${bin} command`)} subs ;;`
  }
  const args = (c: CompletionCommand) => c.argOptions ? q(`1:value:(${c.argOptions.join(' ')})`) : q('*:file:_files')
  const cases = [
    ...prefixes.map(describe),
    ...commands.map((c) => `    ${q(c.id)}) _arguments -s ${[...c.flags.map(zshFlag), args(c)].join(' ')} ;;`),
  ]
  return `#compdef ${bin}
# zsh completion for ${bin}; in ~/.zshrc, after compinit: eval "$(${bin} completion zsh)"
${fn}() {
  local cmd='' i=2 w
  local -a subs
  # The command: the longest run of leading words that names one (or a topic).
  while (( i < CURRENT )); do
    w=\${words[i]}
    case "\${cmd:+$cmd }$w" in
      ${known}) cmd=\${cmd:+$cmd }$w ;;
      *) break ;;
    esac
    (( i++ ))
  done
  # What follows the command is completed as if it were a program of its own.
  words=("\${words[1]}" "\${(@)words[i,-1]}")
  (( CURRENT -= i - 2 ))
  case "$cmd" in
${cases.join('\n')}
  esac
}
compdef ${fn} ${bin}
`
}
