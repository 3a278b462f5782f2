import { parseArgs, type ParseArgsConfig } from 'node:util'
import { closestName } from './closest-name.js'

/** One option of a command: how it is read, and its line in the command's `--help`. */
export type OptionSpec = {
  readonly type: 'string'
  /** What the value is called in help and messages: `DIR` in `--dir DIR`. */
  readonly value: string
  readonly multiple?: boolean
  readonly short?: string
  readonly help: string
} | {
  readonly type: 'boolean'
  readonly short?: string
  readonly help: string
}

export type OptionSpecs = Readonly<Record<string, OptionSpec>>

export interface ParsedArgs {
  readonly values: Readonly<Record<string, string | true | readonly string[] | undefined>>
  readonly positionals: readonly string[]
}

/** A wrong argument: the CLI prints the message and a pointer to `--help`, and exits with EXIT.usage. */
export class UsageError extends Error {}

/**
 * Reads a command's arguments. Node's strict parseArgs would do, but its messages are long and never
 * suggest the option that was meant, so options are read loosely and every problem is reported here.
 */
export function parseArguments (args: readonly string[], specs: OptionSpecs): ParsedArgs {
  const options: NonNullable<ParseArgsConfig['options']> = {}
  for (const [name, spec] of Object.entries(specs)) {
    options[name] = { type: spec.type, ...(spec.short === undefined ? {} : { short: spec.short }), ...(spec.type === 'string' && spec.multiple === true ? { multiple: true } : {}) }
  }
  const { tokens } = parseArgs({ args: [...args], options, strict: false, allowPositionals: true, tokens: true })
  // --help wins over every other problem on the line, so it always shows how to fix them.
  if (Object.hasOwn(specs, 'help') && tokens.some(token => token.kind === 'option' && token.name === 'help')) {
    return { values: { help: true }, positionals: [] }
  }
  const values: Record<string, string | true | string[]> = {}
  const positionals: string[] = []
  for (const token of tokens) {
    if (token.kind === 'positional') positionals.push(token.value)
    if (token.kind !== 'option') continue
    const spec = Object.hasOwn(specs, token.name) ? specs[token.name] : undefined
    const written = args[token.index] as string
    // `-dir` is read by parseArgs as `-d ir`: a long option written with one dash is caught before that happens.
    if (spec === undefined || (!written.startsWith('--') && Object.hasOwn(specs, written.slice(1).split('=')[0] as string))) {
      throw new UsageError(unknownOptionMessage(written.split('=')[0] as string, specs))
    }
    const long = `--${token.name}`
    if (spec.type === 'boolean') {
      if (token.value !== undefined) throw new UsageError(`${long} takes no value; got ${JSON.stringify(token.value)}`)
      values[token.name] = true
      continue
    }
    const shape = `${long} ${spec.value}`
    if (token.value === undefined) throw new UsageError(`${long} needs a value: ${shape}`)
    if (token.inlineValue !== true && token.value.startsWith('-')) {
      throw new UsageError(`${long} needs a value: ${shape}; got the option ${JSON.stringify(token.value)} (write ${long}=${token.value} if that is the value)`)
    }
    if (spec.multiple === true) {
      values[token.name] = [...(values[token.name] as string[] | undefined ?? []), token.value]
    } else if (values[token.name] !== undefined) {
      throw new UsageError(`${long} is given twice; it takes one value`)
    } else {
      values[token.name] = token.value
    }
  }
  return { values, positionals }
}

/** `unknown option --dyas (did you mean --days?)` */
function unknownOptionMessage (written: string, specs: OptionSpecs): string {
  const name = written.replace(/^-+/, '')
  // A one-letter typo is too short to guess from: -q could be anything.
  const closest = name.length > 1 ? closestName(name, Object.keys(specs)) : undefined
  return `unknown option ${written}${closest === undefined ? '' : ` (did you mean --${closest}?)`}`
}

/** A word as a POSIX shell reads it back, for commands the CLI suggests. */
export function shellQuote (word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, "'\\''")}'`
}
