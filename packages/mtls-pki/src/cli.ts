import { X509Certificate } from 'node:crypto'
import { access, readFile, stat } from 'node:fs/promises'
import { isIP } from 'node:net'
import { join } from 'node:path'
import { writeFilesAtomically } from './atomic-write.js'
import { CertificateAuthority, type CertificateUsage, type RevocationReason, type RevocationTarget } from './certificate-authority.js'
import { parseArguments, shellQuote, UsageError, type OptionSpecs, type ParsedArgs } from './cli-arguments.js'
import { closestName } from './closest-name.js'
import { isoSeconds, validityOptions } from './cli-validity.js'
import { PkiError } from './errors.js'
import { CA_DIRECTORY_FILES, loadCertificateAuthority, readText, writeCertificateAuthority, writeCertificateFiles, writeRevocations } from './files.js'
import { describeCertificate, formatInspection } from './inspect.js'
import { KEY_TYPES, type KeyType } from './key-types.js'
import { x509 } from './x509.js'

/** Where the CLI writes; `process.stdout`/`process.stderr` for the real command. */
export interface CliIo {
  readonly stdout: { write: (text: string) => unknown }
  readonly stderr: { write: (text: string) => unknown }
}

/** Exit codes: 0 done, 1 a file or certificate problem, 2 wrong or missing arguments. */
export const EXIT = Object.freeze({ ok: 0, failure: 1, usage: 2 })

interface Command {
  readonly summary: string
  readonly synopsis: string
  readonly description: string
  readonly options: OptionSpecs
  readonly positionals: { readonly name: string, readonly min: number, readonly max: number }
  readonly run: (args: ParsedArgs, io: CliIo) => Promise<void>
}

/** What each file `init` writes is, for `init --help`; a file added to CA_DIRECTORY_FILES without a line here fails the build. */
const CA_FILE_DESCRIPTIONS = {
  rootCert: 'the root CA certificate',
  rootKey: 'the root CA\'s private key (mode 0600)',
  intermediateCert: 'the intermediate CA certificate; it signs every certificate `issue` makes',
  intermediateKey: 'the intermediate CA\'s private key (mode 0600)',
  bundle: 'the trust bundle (the root) to give servers and clients',
  crl: 'CRLs of the intermediate and the root; rewritten by `revoke` and `crl`',
  revoked: 'the revocations recorded by `revoke`, from which every CRL is made'
} as const satisfies Record<keyof typeof CA_DIRECTORY_FILES, string>

const CA_FILES_TO_LOAD = [CA_DIRECTORY_FILES.rootCert, CA_DIRECTORY_FILES.rootKey, CA_DIRECTORY_FILES.intermediateCert, CA_DIRECTORY_FILES.intermediateKey]

const REVOCATION_REASONS = Object.keys(x509.X509CrlReason).filter(key => Number.isNaN(Number(key))) as RevocationReason[]

const DEFAULT_LEAF_DAYS = 90

const help: OptionSpecs = { help: { type: 'boolean', short: 'h', help: 'show this help' } }
const caDirectory: OptionSpecs = { dir: { type: 'string', short: 'd', value: 'DIR', help: 'the CA directory made by init' } }
const keyType: OptionSpecs = { 'key-type': { type: 'string', value: 'TYPE', help: `${KEY_TYPES.join(' | ')} (default: p256)` } }

const commands: Record<string, Command> = {
  init: {
    summary: 'make a root CA and an intermediate CA in a directory',
    synopsis: 'mtls-pki init --dir DIR [--name NAME] [--key-type TYPE] [--days N] [--force]',
    description: `Makes a root CA and an intermediate CA and writes these files into DIR:
${Object.entries(CA_DIRECTORY_FILES).map(([key, file]) => `  ${file.padEnd(22)}${CA_FILE_DESCRIPTIONS[key as keyof typeof CA_DIRECTORY_FILES]}`).join('\n')}`,
    options: {
      dir: { type: 'string', short: 'd', value: 'DIR', help: 'the CA directory (made if missing)' },
      name: { type: 'string', value: 'NAME', help: 'prefix of the CA common names (default: mtls-pki)' },
      ...keyType,
      days: { type: 'string', value: 'N', help: 'validity of the root in days (default: 3650; the intermediate gets half)' },
      force: { type: 'boolean', help: 'replace a CA already in DIR' },
      ...help
    },
    positionals: { name: '', min: 0, max: 0 },
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
    synopsis: `mtls-pki issue NAME --dir DIR [--out OUT] [--spiffe ID] [--dns HOST]... [--ip ADDR]...
                    [--email ADDR]... [--cn NAME] [--client] [--server] [--key-type TYPE]
                    [--days N | --not-after DATE] [--not-before DATE] [--crl-dp URL]...
                    [--ocsp-url URL] [--must-staple]`,
    description: `Writes OUT/NAME.pem (leaf), OUT/NAME-key.pem (0600), OUT/NAME-chain.pem (leaf + intermediate)
and OUT/NAME-ca.pem (root). Existing files of those names are replaced (run it again to renew NAME;
the old certificate is not revoked). Each file is written whole and renamed into place; a symbolic
link, or anything but a regular file, where a file goes is refused, as is an OUT that is a symbolic link.

Validity: ${DEFAULT_LEAF_DAYS} days from now unless told otherwise. DATE is ISO 8601: 2020-01-01 (midnight UTC),
2020-01-01T12:00:00Z or 2020-01-01T14:00:00+02:00. Dates may be past or future, for expired and not yet
valid test certificates. --days counts from --not-before (or from now); --days and --not-after together
are refused. A --not-after in the past without --not-before starts ${DEFAULT_LEAF_DAYS} days before it.

Examples:
  mtls-pki issue web --dir ./pki --server --dns localhost --ip 127.0.0.1
  mtls-pki issue expired --dir ./pki --client --not-after 2020-01-01T00:00:00Z
  mtls-pki issue shop --dir ./pki --client --crl-dp http://crl.example/shard-1.crl
  mtls-pki issue web --dir ./pki --server --dns localhost --ocsp-url http://127.0.0.1:8888/ --must-staple`,
    options: {
      ...caDirectory,
      out: { type: 'string', short: 'o', value: 'OUT', help: 'where to write (default: DIR)' },
      spiffe: { type: 'string', value: 'ID', help: 'SPIFFE ID, as the URI SAN (spiffe://trust.domain/path)' },
      dns: { type: 'string', multiple: true, value: 'HOST', help: 'DNS SAN; repeat for more' },
      ip: { type: 'string', multiple: true, value: 'ADDR', help: 'IP address SAN (IPv4 or IPv6); repeat for more' },
      email: { type: 'string', multiple: true, value: 'ADDR', help: 'email SAN; repeat for more' },
      cn: { type: 'string', value: 'NAME', help: 'subject common name (default: first DNS name, else last SPIFFE path segment, else NAME)' },
      client: { type: 'boolean', help: 'for TLS clients (clientAuth)' },
      server: { type: 'boolean', help: 'for TLS servers (serverAuth); neither or both flags: both usages' },
      ...keyType,
      days: { type: 'string', value: 'N', help: `validity in days, from --not-before or now (default: ${DEFAULT_LEAF_DAYS})` },
      'not-before': { type: 'string', value: 'DATE', help: 'start of validity (default: five minutes ago, for clock skew)' },
      'not-after': { type: 'string', value: 'DATE', help: 'end of validity, instead of --days' },
      'crl-dp': { type: 'string', multiple: true, value: 'URL', help: 'CRL distribution point: the shard (crl --idp URL) that covers it; repeat for more' },
      'ocsp-url': { type: 'string', value: 'URL', help: 'OCSP responder URL, written as the authorityInfoAccess extension' },
      'must-staple': { type: 'boolean', help: 'TLS feature status_request (must-staple): peers must get a stapled OCSP response' },
      ...help
    },
    positionals: { name: 'NAME', min: 1, max: 1 },
    async run ({ values, positionals }, io) {
      const name = positionals[0] as string
      if (!/^[A-Za-z0-9._-]+$/.test(name)) throw new UsageError(`NAME must be a plain file name (letters, digits, '.', '_', '-'); got ${JSON.stringify(name)}`)
      const caDir = required(values, 'dir')
      const spiffeId = optionalString(values, 'spiffe')
      if (spiffeId !== undefined && !spiffeId.startsWith('spiffe://')) throw new UsageError(`--spiffe must start with spiffe://; got ${JSON.stringify(spiffeId)}`)
      const dnsNames = list(values, 'dns')
      const ips = list(values, 'ip')
      for (const ip of ips) {
        if (isIP(ip) === 0) throw new UsageError(`--ip ${JSON.stringify(ip)} is not an IPv4 or IPv6 address${/[g-z]/i.test(ip) ? ' (use --dns for a host name)' : ''}`)
      }
      const crlDistributionPoints = list(values, 'crl-dp')
      for (const uri of crlDistributionPoints) {
        if (!URL.canParse(uri)) throw new UsageError(`--crl-dp ${JSON.stringify(uri)} is not a URL (http://crl.example/shard-1.crl)`)
      }
      const ocspUrl = optionalString(values, 'ocsp-url')
      if (ocspUrl !== undefined && !URL.canParse(ocspUrl)) throw new UsageError(`--ocsp-url ${JSON.stringify(ocspUrl)} is not a URL (http://127.0.0.1:8888/)`)
      const usage: CertificateUsage = values.client === values.server ? 'both' : values.client === true ? 'client' : 'server'
      const validity = validityOptions({
        notBefore: optionalString(values, 'not-before'),
        notAfter: optionalString(values, 'not-after'),
        days: positiveNumber(values, 'days')
      }, DEFAULT_LEAF_DAYS)
      const type = keyTypeOption(values)
      const ca = await loadCa(caDir)
      const issued = await ca.issue({
        commonName: optionalString(values, 'cn') ?? (dnsNames.length === 0 && spiffeId === undefined ? name : undefined),
        spiffeId,
        dnsNames,
        ips,
        emails: list(values, 'email'),
        usage,
        ...validity,
        keyType: type,
        crlDistributionPoints,
        ...(ocspUrl === undefined ? {} : { ocspUrl }),
        mustStaple: values['must-staple'] === true
      })
      const files = await writeCertificateFiles(optionalString(values, 'out') ?? caDir, name, issued)
      const now = Date.now()
      const state = issued.notAfter.getTime() <= now ? ' (already expired)' : issued.notBefore.getTime() > now ? ' (not yet valid)' : ''
      io.stdout.write(`issued ${name}: serial ${issued.serialNumber}, valid from ${isoSeconds(issued.notBefore)} until ${isoSeconds(issued.notAfter)}${state}\n` +
        `  certificate: ${files.certFile}\n  key:         ${files.keyFile}\n  chain:       ${files.chainFile}\n  CA bundle:   ${files.caFile}\n` +
        `  SHA-256:     ${issued.fingerprint256}\n`)
    }
  },
  revoke: {
    summary: 'revoke a certificate (by serial or file) and rewrite the CRL',
    synopsis: 'mtls-pki revoke SERIAL|CERT_FILE --dir DIR [--reason REASON]',
    description: `Records the revocation in DIR/${CA_DIRECTORY_FILES.revoked} and rewrites DIR/${CA_DIRECTORY_FILES.crl}. A certificate file must
come from this CA; the intermediate itself is revoked by the root. Given as a file, the certificate is
listed in the CRL shards its distribution points name (crl --idp); given by serial, in every shard.`,
    options: {
      ...caDirectory,
      reason: { type: 'string', value: 'REASON', help: `${REVOCATION_REASONS.join(' | ')} (default: unspecified)` },
      ...help
    },
    positionals: { name: 'SERIAL or CERT_FILE', min: 1, max: 1 },
    async run ({ values, positionals }, io) {
      const caDir = required(values, 'dir')
      const reason = reasonOption(values)
      const intermediate = await loadCa(caDir)
      const target = positionals[0] as string
      const certificate: RevocationTarget = /^[0-9A-Fa-f:]+$/.test(target) ? target : await certificateFileToRevoke(target, intermediate, caDir)
      const serialNumber = typeof certificate === 'string' ? certificate : certificate.serialNumber
      // The intermediate itself is revoked by the root; every leaf by the intermediate.
      const issuer = serialNumber.replace(/:/g, '').toUpperCase() === intermediate.serialNumber ? intermediate.root : intermediate
      const entry = issuer.revoke(certificate, { reason })
      const crlFile = await writeRevocations(caDir, intermediate)
      io.stdout.write(`revoked ${entry.serialNumber} (${entry.reason}); CRL written to ${crlFile}\n`)
    }
  },
  crl: {
    summary: 'write a fresh CRL bundle (root and intermediate)',
    synopsis: 'mtls-pki crl --dir DIR [--out FILE] [--days N] [--idp URL --out FILE]',
    description: `Signs a CRL of the intermediate and one of the root, listing what \`revoke\` recorded.

With --idp URL the intermediate's CRL is a shard: it carries URL as its (critical) issuing distribution
point and lists only the certificates issued with --crl-dp URL (and those revoked by serial, whose
distribution points are unknown). A shard covers only those certificates, so it needs --out:
DIR/${CA_DIRECTORY_FILES.crl} keeps the whole CRL. The root's CRL is whole either way.`,
    options: {
      ...caDirectory,
      out: { type: 'string', short: 'o', value: 'FILE', help: `where to write (default: DIR/${CA_DIRECTORY_FILES.crl})` },
      days: { type: 'string', value: 'N', help: 'days until the CRLs\' next update (default: 7)' },
      idp: { type: 'string', value: 'URL', help: 'make the intermediate\'s CRL the shard for this distribution point' },
      ...help
    },
    positionals: { name: '', min: 0, max: 0 },
    async run ({ values }, io) {
      const caDir = required(values, 'dir')
      const crlDays = positiveNumber(values, 'days')
      const out = optionalString(values, 'out')
      const shard = optionalString(values, 'idp')
      if (shard !== undefined && !URL.canParse(shard)) throw new UsageError(`--idp ${JSON.stringify(shard)} is not a URL (http://crl.example/shard-1.crl)`)
      if (shard !== undefined && out === undefined) throw new UsageError(`--idp needs --out FILE: a shard lists only part of the revocations, and DIR/${CA_DIRECTORY_FILES.crl} keeps them all`)
      const intermediate = await loadCa(caDir)
      const crls = await intermediate.createCrls({
        ...(crlDays === undefined ? {} : { days: crlDays }),
        ...(shard === undefined ? {} : { issuingDistributionPoint: shard })
      })
      let file: string
      if (out === undefined) {
        file = await writeRevocations(caDir, intermediate, crls)
      } else {
        await writeFilesAtomically([{ file: out, content: crls.join('') }])
        file = out
      }
      const listed = crls.reduce((count, pem) => count + new x509.X509Crl(pem).entries.length, 0)
      io.stdout.write(`CRL with ${listed} revoked certificate(s) written to ${file}\n`)
    }
  },
  inspect: {
    summary: 'show certificates, CRLs and keys in PEM files, for a person',
    synopsis: 'mtls-pki inspect FILE...',
    description: `Prints subject, SANs, issuer, serial, key type, validity with days left, usages and the SHA-256
fingerprint of every certificate in each FILE; CRLs and keys are described too (keys never printed).`,
    options: { ...help },
    positionals: { name: 'FILE', min: 1, max: Infinity },
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

Run "mtls-pki COMMAND --help" for a command's options, "mtls-pki --version" for the version.`

/** Runs the `mtls-pki` command line; resolves to the exit code. */
export async function runCli (argv: readonly string[], io: CliIo): Promise<number> {
  endQuietlyOnClosedPipe(io.stdout)
  const [first, ...rest] = argv
  if (first === undefined || first === '--help' || first === '-h' || (first === 'help' && (rest[0] === undefined || rest[0].startsWith('-')))) {
    (first === undefined ? io.stderr : io.stdout).write(mainUsage + '\n')
    return first === undefined ? EXIT.usage : EXIT.ok
  }
  if (first === '--version' || first === '-v') {
    io.stdout.write(await version() + '\n')
    return EXIT.ok
  }
  // `mtls-pki help issue` is `mtls-pki issue --help`.
  const [name, args] = first === 'help' ? [rest[0] as string, ['--help']] : [first, rest]
  const command = Object.hasOwn(commands, name) ? commands[name] : undefined
  if (command === undefined) {
    const closest = closestName(name, Object.keys(commands))
    const what = name.startsWith('-') ? `unknown option ${name} (the command comes first: mtls-pki COMMAND [options])` : `unknown command ${JSON.stringify(name)}${closest === undefined ? '' : ` (did you mean ${closest}?)`}`
    io.stderr.write(`mtls-pki: ${what}\nRun "mtls-pki --help" for usage.\n`)
    return EXIT.usage
  }
  try {
    const parsed = parseArguments(args, command.options)
    if (parsed.values.help === true) {
      io.stdout.write(usage(command) + '\n')
      return EXIT.ok
    }
    checkPositionals(command, parsed.positionals)
    await command.run(parsed, io)
    return EXIT.ok
  } catch (err) {
    return report(err, name, io)
  }
}

// `mtls-pki inspect ... | head` closes the pipe before the output ends: the reader has seen enough, which is no
// reason for a stack trace. Only a stream (process.stdout) has error events; any other error still throws.
function endQuietlyOnClosedPipe (stdout: CliIo['stdout']): void {
  const stream = stdout as Partial<NodeJS.EventEmitter>
  if (typeof stream.on === 'function' && stream.listeners?.('error').includes(ignoreClosedPipe) !== true) stream.on('error', ignoreClosedPipe)
}

function ignoreClosedPipe (err: NodeJS.ErrnoException): void {
  if (err.code !== 'EPIPE') throw err
}

function report (err: unknown, name: string, io: CliIo): number {
  const line = (message: string): string => `mtls-pki ${name}: ${message.replace(/\s*\n\s*/g, ' ')}\n`
  if (err instanceof UsageError || (err instanceof PkiError && err.code === 'ERR_MTLS_PKI_INVALID_OPTION')) {
    io.stderr.write(line(err.message) + `Run "mtls-pki ${name} --help" for usage.\n`)
    return EXIT.usage
  }
  // Every file the CLI reads or writes fails as a PkiError naming the file: one line, not a stack trace.
  if (err instanceof PkiError) {
    io.stderr.write(line(err.message))
    return EXIT.failure
  }
  throw err
}

function usage (command: Command): string {
  const left = (name: string, spec: OptionSpecs[string]): string => `--${name}${spec.short === undefined ? '' : `, -${spec.short}`}${spec.type === 'string' ? ` ${spec.value}` : ''}`
  const entries = Object.entries(command.options)
  const width = Math.max(...entries.map(([name, spec]) => left(name, spec).length)) + 3
  return `${command.synopsis}\n\n${command.description}\n\nOptions:\n${entries.map(([name, spec]) => `  ${left(name, spec).padEnd(width)}${spec.help}`).join('\n')}`
}

function checkPositionals (command: Command, positionals: readonly string[]): void {
  const { name, min, max } = command.positionals
  if (positionals.length < min) throw new UsageError(`missing ${name}`)
  if (positionals.length > max) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[max])}`)
}

async function version (): Promise<string> {
  const manifest = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
  return manifest.version
}

/** Loads the CA in `caDir`; a directory without one is answered with the command that makes it. */
async function loadCa (caDir: string): Promise<CertificateAuthority> {
  try {
    return await loadCertificateAuthority(caDir)
  } catch (err) {
    if (!(err instanceof PkiError && err.code === 'ERR_MTLS_PKI_FILE_UNREADABLE')) throw err
    const init = `run "mtls-pki init --dir ${shellQuote(caDir)}" first`
    const found = await stat(caDir).catch((statError: NodeJS.ErrnoException) => statError.code === 'ENOENT' ? null : undefined)
    if (found === undefined) throw err
    if (found === null) throw new PkiError('ERR_MTLS_PKI_FILE_UNREADABLE', `no CA in ${caDir} (no such directory); ${init}`, { file: caDir, cause: err })
    if (!found.isDirectory()) throw new PkiError('ERR_MTLS_PKI_FILE_UNREADABLE', `${caDir} is a file; --dir takes the CA directory that "mtls-pki init" made`, { file: caDir, cause: err })
    const present = await Promise.all(CA_FILES_TO_LOAD.map(async file => await access(join(caDir, file)).then(() => true, () => false)))
    // Some CA files but not all is a damaged CA, not a missing one: the error names the missing file.
    if (present.includes(true)) throw err
    throw new PkiError('ERR_MTLS_PKI_FILE_UNREADABLE', `no CA in ${caDir}; ${init}`, { file: caDir, cause: err })
  }
}

function required (values: ParsedArgs['values'], name: string): string {
  const value = optionalString(values, name)
  if (value === undefined) throw new UsageError(`--${name} is required`)
  if (value === '') throw new UsageError(`--${name} must not be empty`)
  return value
}

function optionalString (values: ParsedArgs['values'], name: string): string | undefined {
  const value = values[name]
  return typeof value === 'string' ? value : undefined
}

function list (values: ParsedArgs['values'], name: string): string[] {
  const value = values[name]
  return Array.isArray(value) ? [...value] : []
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

function reasonOption (values: ParsedArgs['values']): RevocationReason {
  const value = optionalString(values, 'reason') ?? 'unspecified'
  if ((REVOCATION_REASONS as readonly string[]).includes(value)) return value as RevocationReason
  const closest = closestName(value, REVOCATION_REASONS)
  throw new UsageError(`--reason ${JSON.stringify(value)} is not a revocation reason${closest === undefined ? '' : ` (did you mean ${closest}?)`}; one of ${REVOCATION_REASONS.join(', ')}`)
}

/** The serial and distribution points of a certificate file that this CA issued; anything else would be recorded and change nothing. */
async function certificateFileToRevoke (file: string, intermediate: CertificateAuthority, caDir: string): Promise<RevocationTarget> {
  const text = await readText(file)
  let cert: X509Certificate
  try {
    cert = new X509Certificate(text)
  } catch (err) {
    throw new PkiError('ERR_MTLS_PKI_MALFORMED_INPUT', `${file}: not a PEM certificate (${(err as Error).message})`, { file, cause: err })
  }
  const signedBy = (ca: CertificateAuthority): boolean => cert.verify(new X509Certificate(ca.certificate).publicKey)
  if (cert.serialNumber === intermediate.root.serialNumber && signedBy(intermediate.root)) {
    throw new UsageError(`${file} is the root CA, which cannot be revoked; make a new CA with "mtls-pki init --dir ${shellQuote(caDir)} --force"`)
  }
  if (!signedBy(intermediate) && !signedBy(intermediate.root)) {
    const issuer = cert.issuer.replace(/\n/g, ', ')
    throw new UsageError(`${file} was not issued by the CA in ${caDir} (its issuer is ${issuer === intermediate.subject ? 'another CA of the same name' : issuer})`)
  }
  return { serialNumber: cert.serialNumber, crlDistributionPoints: describeCertificate(cert.raw).crlDistributionPoints }
}
