import { X509Certificate } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { parseArgs, type ParseArgsConfig } from 'node:util'
import { CertificateAuthority, type CertificateUsage, type RevocationReason } from './certificate-authority.js'
import { PkiError } from './errors.js'
import { CA_DIRECTORY_FILES, loadCertificateAuthority, readText, writeCertificateAuthority, writeCertificateFiles, writeRevocations } from './files.js'
import { formatInspection } from './inspect.js'
import { KEY_TYPES, type KeyType } from './key-types.js'

/** Where the CLI writes; `process.stdout`/`process.stderr` for the real command. */
export interface CliIo {
  readonly stdout: { write: (text: string) => unknown }
  readonly stderr: { write: (text: string) => unknown }
}

/** Exit codes: 0 done, 1 a file or certificate problem, 2 wrong or missing arguments. */
export const EXIT = Object.freeze({ ok: 0, failure: 1, usage: 2 })

type Options = NonNullable<ParseArgsConfig['options']>

interface Command {
  readonly summary: string
  readonly usage: string
  readonly options: Options
  readonly positionals: { readonly min: number, readonly max: number }
  readonly run: (args: ParsedArgs, io: CliIo) => Promise<void>
}

interface ParsedArgs {
  readonly values: Record<string, string | boolean | Array<string | boolean> | undefined>
  readonly positionals: string[]
}

class UsageError extends Error {}

const help: Options = { help: { type: 'boolean', short: 'h' } }
const dir: Options = { dir: { type: 'string', short: 'd' } }
const keyType: Options = { 'key-type': { type: 'string' } }
const days: Options = { days: { type: 'string' } }

const commands: Record<string, Command> = {
  init: {
    summary: 'make a root CA and an intermediate CA in a directory',
    usage: `mtls-pki init --dir DIR [--name NAME] [--key-type TYPE] [--days N] [--force]

Writes ${Object.values(CA_DIRECTORY_FILES).filter(f => !f.endsWith('.json')).join(', ')} into DIR.
Keys are written with mode 0600.

  --dir, -d DIR     the CA directory (made if missing)
  --name NAME       prefix of the CA common names (default: mtls-pki)
  --key-type TYPE   ${KEY_TYPES.join(' | ')} (default: p256)
  --days N          validity of the root in days (default: 3650; the intermediate gets half)
  --force           replace a CA already in DIR`,
    options: { ...help, ...dir, ...keyType, ...days, name: { type: 'string' }, force: { type: 'boolean' } },
    positionals: { min: 0, max: 0 },
    async run ({ values }, io) {
      const caDir = required(values, 'dir')
      const name = optionalString(values, 'name') ?? 'mtls-pki'
      const rootDays = positiveNumber(values, 'days') ?? 3650
      const type = keyTypeOption(values)
      const root = await CertificateAuthority.createRoot({ commonName: `${name} root CA`, keyType: type, days: rootDays })
      const intermediate = await root.createIntermediate({ commonName: `${name} intermediate CA`, keyType: type, days: rootDays / 2 })
      await writeCertificateAuthority(caDir, intermediate, { force: values.force === true })
      io.stdout.write(`made ${root.subject} and ${intermediate.subject} in ${caDir}\n` +
        `trust bundle: ${join(caDir, CA_DIRECTORY_FILES.bundle)}\n`)
    }
  },
  issue: {
    summary: 'issue a leaf certificate from the CA in a directory',
    usage: `mtls-pki issue NAME --dir DIR [--out OUT] [--spiffe ID] [--dns HOST]... [--ip ADDR]...
                    [--email ADDR]... [--cn NAME] [--days N] [--client] [--server] [--key-type TYPE]

Writes OUT/NAME.pem (leaf), OUT/NAME-key.pem (0600), OUT/NAME-chain.pem (leaf + intermediate)
and OUT/NAME-ca.pem (root).

  --dir, -d DIR     the CA directory made by init
  --out, -o OUT     where to write (default: DIR)
  --spiffe ID       SPIFFE ID, as the URI SAN (spiffe://trust.domain/path)
  --dns HOST        DNS SAN; repeat for more
  --ip ADDR         IP address SAN (IPv4 or IPv6); repeat for more
  --email ADDR      email SAN; repeat for more
  --cn NAME         subject common name (default: first DNS name, else last SPIFFE path segment, else NAME)
  --days N          validity in days (default: 90)
  --client          for TLS clients (clientAuth)
  --server          for TLS servers (serverAuth); neither or both flags: both usages
  --key-type TYPE   ${KEY_TYPES.join(' | ')} (default: p256)`,
    options: {
      ...help,
      ...dir,
      ...keyType,
      ...days,
      out: { type: 'string', short: 'o' },
      spiffe: { type: 'string' },
      dns: { type: 'string', multiple: true },
      ip: { type: 'string', multiple: true },
      email: { type: 'string', multiple: true },
      cn: { type: 'string' },
      client: { type: 'boolean' },
      server: { type: 'boolean' }
    },
    positionals: { min: 1, max: 1 },
    async run ({ values, positionals }, io) {
      const name = positionals[0] as string
      if (!/^[A-Za-z0-9._-]+$/.test(name)) throw new UsageError(`NAME must be a plain file name (letters, digits, '.', '_', '-'); got ${JSON.stringify(name)}`)
      const caDir = required(values, 'dir')
      const spiffeId = optionalString(values, 'spiffe')
      if (spiffeId !== undefined && !spiffeId.startsWith('spiffe://')) throw new UsageError(`--spiffe must start with spiffe://; got ${JSON.stringify(spiffeId)}`)
      const dnsNames = list(values, 'dns')
      const usage: CertificateUsage = values.client === values.server ? 'both' : values.client === true ? 'client' : 'server'
      const ca = await loadCertificateAuthority(caDir)
      const issued = await ca.issue({
        commonName: optionalString(values, 'cn') ?? (dnsNames.length === 0 && spiffeId === undefined ? name : undefined),
        spiffeId,
        dnsNames,
        ips: list(values, 'ip'),
        emails: list(values, 'email'),
        usage,
        days: positiveNumber(values, 'days') ?? 90,
        keyType: keyTypeOption(values)
      })
      const files = await writeCertificateFiles(optionalString(values, 'out') ?? caDir, name, issued)
      io.stdout.write(`issued ${name}: serial ${issued.serialNumber}, valid until ${issued.notAfter.toISOString()}\n` +
        `  certificate: ${files.certFile}\n  key:         ${files.keyFile}\n  chain:       ${files.chainFile}\n  CA bundle:   ${files.caFile}\n` +
        `  SHA-256:     ${issued.fingerprint256}\n`)
    }
  },
  revoke: {
    summary: 'revoke a certificate (by serial or file) and rewrite the CRL',
    usage: `mtls-pki revoke SERIAL|CERT_FILE --dir DIR [--reason REASON]

Records the revocation in DIR/${CA_DIRECTORY_FILES.revoked} and rewrites DIR/${CA_DIRECTORY_FILES.crl}.

  --dir, -d DIR     the CA directory made by init
  --reason REASON   unspecified | keyCompromise | superseded | cessationOfOperation | ... (default: unspecified)`,
    options: { ...help, ...dir, reason: { type: 'string' } },
    positionals: { min: 1, max: 1 },
    async run ({ values, positionals }, io) {
      const caDir = required(values, 'dir')
      const target = positionals[0] as string
      const serialNumber = /^[0-9A-Fa-f:]+$/.test(target) ? target : await serialOfCertificateFile(target)
      const intermediate = await loadCertificateAuthority(caDir)
      // The intermediate itself is revoked by the root; every leaf by the intermediate.
      const issuer = serialNumber.replace(/:/g, '').toUpperCase() === intermediate.serialNumber ? intermediate.root : intermediate
      const reason = optionalString(values, 'reason') as RevocationReason | undefined
      let entry
      try {
        entry = issuer.revoke(serialNumber, reason === undefined ? {} : { reason })
      } catch (err) {
        if (err instanceof PkiError && err.code === 'ERR_MTLS_PKI_INVALID_OPTION') throw new UsageError(err.message)
        throw err
      }
      const crlFile = await writeRevocations(caDir, intermediate)
      io.stdout.write(`revoked ${entry.serialNumber} (${entry.reason}); CRL written to ${crlFile}\n`)
    }
  },
  crl: {
    summary: 'write a fresh CRL bundle (root and intermediate)',
    usage: `mtls-pki crl --dir DIR [--out FILE] [--days N]

  --dir, -d DIR     the CA directory made by init
  --out, -o FILE    where to write (default: DIR/${CA_DIRECTORY_FILES.crl})
  --days N          days until the CRLs' next update (default: 7)`,
    options: { ...help, ...dir, ...days, out: { type: 'string', short: 'o' } },
    positionals: { min: 0, max: 0 },
    async run ({ values }, io) {
      const caDir = required(values, 'dir')
      const crlDays = positiveNumber(values, 'days')
      const intermediate = await loadCertificateAuthority(caDir)
      const out = optionalString(values, 'out')
      let file: string
      if (out === undefined) {
        file = await writeRevocations(caDir, intermediate, crlDays)
      } else {
        await writeFile(out, (await intermediate.createCrls(crlDays === undefined ? {} : { days: crlDays })).join(''))
        file = out
      }
      io.stdout.write(`CRL with ${intermediate.revoked.length + intermediate.root.revoked.length} revoked certificate(s) written to ${file}\n`)
    }
  },
  inspect: {
    summary: 'show certificates, CRLs and keys in PEM files, for a person',
    usage: `mtls-pki inspect FILE...

Prints subject, SANs, issuer, serial, key type, validity with days left, usages and the SHA-256
fingerprint of every certificate in each FILE; CRLs and keys are described too (keys never printed).`,
    options: { ...help },
    positionals: { min: 1, max: Infinity },
    async run ({ positionals }, io) {
      for (const file of positionals) {
        io.stdout.write(formatInspection(await readText(file), file) + '\n')
      }
    }
  }
}

const mainUsage = `mtls-pki: a development certificate authority for mutual TLS

Usage: mtls-pki COMMAND [options]

Commands:
${Object.entries(commands).map(([name, command]) => `  ${name.padEnd(9)}${command.summary}`).join('\n')}

Run 'mtls-pki COMMAND --help' for a command's options.`

/** Runs the `mtls-pki` command line; resolves to the exit code. */
export async function runCli (argv: readonly string[], io: CliIo): Promise<number> {
  const [name, ...rest] = argv
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    const out = name === undefined ? io.stderr : io.stdout
    out.write(mainUsage + '\n')
    return name === undefined ? EXIT.usage : EXIT.ok
  }
  const command = Object.hasOwn(commands, name) ? commands[name] : undefined
  if (command === undefined) {
    io.stderr.write(`mtls-pki: unknown command ${JSON.stringify(name)}\n\n${mainUsage}\n`)
    return EXIT.usage
  }
  try {
    const args = parse(command, rest)
    if (args.values.help === true) {
      io.stdout.write(command.usage + '\n')
      return EXIT.ok
    }
    await command.run(args, io)
    return EXIT.ok
  } catch (err) {
    if (err instanceof UsageError || (err instanceof PkiError && err.code === 'ERR_MTLS_PKI_INVALID_OPTION')) {
      io.stderr.write(`mtls-pki ${name}: ${err.message}\n\nUsage: ${command.usage}\n`)
      return EXIT.usage
    }
    if (err instanceof PkiError) {
      io.stderr.write(`mtls-pki ${name}: ${err.message}\n`)
      return EXIT.failure
    }
    throw err
  }
}

function parse (command: Command, args: string[]): ParsedArgs {
  let parsed
  try {
    parsed = parseArgs({ args, options: command.options, allowPositionals: true, strict: true })
  } catch (err) {
    throw new UsageError((err as Error).message)
  }
  const { values, positionals } = parsed
  if (values.help !== true && (positionals.length < command.positionals.min || positionals.length > command.positionals.max)) {
    throw new UsageError(positionals.length < command.positionals.min ? 'missing argument' : `unexpected argument ${JSON.stringify(positionals[command.positionals.max])}`)
  }
  return { values, positionals }
}

function required (values: ParsedArgs['values'], name: string): string {
  const value = optionalString(values, name)
  if (value === undefined || value === '') throw new UsageError(`--${name} is required`)
  return value
}

function optionalString (values: ParsedArgs['values'], name: string): string | undefined {
  const value = values[name]
  return typeof value === 'string' ? value : undefined
}

function list (values: ParsedArgs['values'], name: string): string[] {
  const value = values[name]
  return Array.isArray(value) ? value.map(String) : []
}

function positiveNumber (values: ParsedArgs['values'], name: string): number | undefined {
  const value = optionalString(values, name)
  if (value === undefined) return undefined
  const number = Number(value)
  if (!/^\d+(\.\d+)?$/.test(value) || number <= 0) throw new UsageError(`--${name} must be a positive number; got ${JSON.stringify(value)}`)
  return number
}

function keyTypeOption (values: ParsedArgs['values']): KeyType {
  const value = optionalString(values, 'key-type') ?? 'p256'
  if (!(KEY_TYPES as readonly string[]).includes(value)) throw new UsageError(`--key-type must be one of ${KEY_TYPES.join(', ')}; got ${JSON.stringify(value)}`)
  return value as KeyType
}

async function serialOfCertificateFile (file: string): Promise<string> {
  const text = await readText(file)
  try {
    return new X509Certificate(text).serialNumber
  } catch (err) {
    throw new PkiError('ERR_MTLS_PKI_MALFORMED_INPUT', `${file}: not a PEM certificate (${(err as Error).message})`, { file, cause: err })
  }
}
