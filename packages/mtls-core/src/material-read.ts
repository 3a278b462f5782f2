import { createHash } from 'node:crypto'
import { MaterialError, type MaterialErrorCode } from './errors.js'
import { FileReadError, readFailureReason, readRegularFile } from './file-read.js'
import { snapshotOptions } from './option-keys.js'
import { parseTrustDomain } from './spiffe-id.js'

type PemInput = string | Buffer

/** Where certificate material comes from: files, or PEM given directly (not both for one item). */
export interface MaterialInput {
  /** Leaf certificate, optionally followed by intermediates. */
  certFile?: string
  cert?: PemInput
  /** Private key: PKCS#8, SEC1 or PKCS#1 PEM, encrypted if `passphrase` is given. */
  keyFile?: string
  key?: PemInput
  passphrase?: string
  /** Trusted CA certificates: one or more bundles. */
  caFile?: string | string[]
  ca?: PemInput | PemInput[]
  /**
   * Trusted CA certificates by SPIFFE trust domain (PEM), instead of `caFile`/`ca`: every bundle is trusted, and a
   * peer's chain must end at a CA of its own SPIFFE ID's trust domain (go-spiffe's `x509svid.Verify`). What a
   * SPIFFE Workload API source supplies; an empty list trusts nothing for its trust domain.
   */
  trustDomains?: Readonly<Record<string, PemInput | PemInput[]>>
  /** Certificate revocation lists (optional). */
  crlFile?: string | string[]
  crl?: PemInput | PemInput[]
  /** Largest file (or PEM option) read, in bytes. Default: 1 MiB, a Kubernetes Secret's limit and room for a big CA bundle. */
  maxFileBytes?: number
}

/** Every key of MaterialInput, for packages that take material among their own options. */
export const MATERIAL_INPUT_KEYS = ['certFile', 'cert', 'keyFile', 'key', 'passphrase', 'caFile', 'ca', 'trustDomains', 'crlFile', 'crl', 'maxFileBytes'] as const satisfies ReadonlyArray<keyof MaterialInput>

const DEFAULT_MAX_FILE_BYTES = 1024 * 1024

/** Raw inputs read from files or taken from options, before validation. */
export interface MaterialPems {
  readonly cert: PemItem
  readonly key: PemItem
  /** Every trusted CA input (with `trustDomains`, each trust domain's, in order). */
  readonly ca: PemItem[]
  /** The CA inputs of each SPIFFE trust domain, when the trust was given by trust domain; else `null`. */
  readonly trustDomains: ReadonlyMap<string, PemItem[]> | null
  readonly crl: PemItem[]
  readonly passphrase: string | undefined
  readonly digest: string
}

/** One input as read: its PEM text and where it came from. */
export interface PemItem {
  readonly text: string
  /** A file name, or a description such as `cert option`. */
  readonly source: string
  readonly file: string | undefined
}

/** Reads every input of a material set together, without validating it. */
export async function readMaterial (given: MaterialInput): Promise<MaterialPems> {
  const input = snapshotOptions(given) // read once; a polluted Object.prototype adds no file
  const maxBytes = input.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES
  if (!Number.isInteger(maxBytes) || maxBytes <= 0) throw invalidOption(`maxFileBytes must be a positive whole number of bytes; got ${JSON.stringify(maxBytes)}`)
  const one = async (name: 'cert' | 'key'): Promise<PemItem> => {
    const items = await readItems(name, input[`${name}File`], input[name], maxBytes)
    if (items.length !== 1) throw invalidOption(`give exactly one of ${name}File or ${name}`)
    return items[0] as PemItem
  }
  const trustDomains = input.trustDomains === undefined ? null : readTrustDomains(input, maxBytes)
  const [cert, key, ca, crl] = await Promise.all([
    one('cert'),
    one('key'),
    trustDomains === null ? readItems('ca', input.caFile, input.ca, maxBytes) : [...trustDomains.values()].flat(),
    readItems('crl', input.crlFile, input.crl, maxBytes)
  ])
  if (ca.length === 0) throw invalidOption(trustDomains === null ? 'give caFile or ca: the CA certificates that peers must chain to' : 'trustDomains holds no CA certificate: no peer could be trusted')
  const hash = createHash('sha256')
  for (const item of [cert, key, ...ca, ...crl]) hash.update(item.source).update('\0').update(item.text).update('\0')
  // Which bundle is filed under which trust domain, empty ones included: each item's source names its domain.
  if (trustDomains !== null) for (const [name, items] of trustDomains) hash.update(`trust domain\0${name}\0${items.length}\0`)
  hash.update(input.passphrase ?? '')
  return { cert, key, ca, trustDomains, crl, passphrase: input.passphrase, digest: hash.digest('hex') }
}

// Bundles by trust domain: names checked as SPIFFE trust domains (lowercase, as peers' IDs are compared).
function readTrustDomains (input: MaterialInput, maxBytes: number): Map<string, PemItem[]> {
  if (input.caFile !== undefined || input.ca !== undefined) throw invalidOption('give trustDomains or caFile/ca, not both: trustDomains holds every trusted CA')
  const given = input.trustDomains
  if (typeof given !== 'object' || given === null || Array.isArray(given)) throw invalidOption('trustDomains must be an object of PEM CA certificates by trust domain name')
  const bundles = new Map<string, PemItem[]>()
  // By name: the agent sends federated bundles in any order, and the same trust must read (and digest) the same.
  for (const [name, pems] of Object.entries(given).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    let trustDomain: string
    try {
      trustDomain = parseTrustDomain(name)
    } catch (err) {
      throw invalidOption(`trustDomains: ${JSON.stringify(name)} is not a SPIFFE trust domain name (${(err as Error).message})`)
    }
    if (trustDomain !== name) throw invalidOption(`trustDomains: write ${JSON.stringify(name)} as ${JSON.stringify(trustDomain)}, as SPIFFE IDs name it`)
    const list = Array.isArray(pems) ? pems : [pems]
    bundles.set(name, list.map((value, index) => {
      if (typeof value !== 'string' && !Buffer.isBuffer(value)) throw invalidOption(`trustDomains[${JSON.stringify(name)}] must be PEM text (strings or Buffers)`)
      const source = `trust bundle of ${name}${list.length > 1 ? ` [${index}]` : ''}`
      const bytes = typeof value === 'string' ? Buffer.byteLength(value) : value.length
      if (bytes > maxBytes) throw tooLarge(source, undefined, bytes, maxBytes)
      return { text: value.toString(), source, file: undefined }
    }))
  }
  return bundles
}

/** A MaterialError about one input, naming where it came from. */
export function itemError (code: MaterialErrorCode, item: PemItem, reason: string, cause?: unknown): MaterialError {
  return new MaterialError(code, `${item.source}: ${reason}`, { file: item.file, cause })
}

async function readItems (name: string, files: string | string[] | undefined, values: PemInput | PemInput[] | undefined, maxBytes: number): Promise<PemItem[]> {
  if (files !== undefined && values !== undefined) throw invalidOption(`give ${name}File or ${name}, not both`)
  if (files !== undefined) {
    const list = Array.isArray(files) ? files : [files]
    return await Promise.all(list.map(async file => {
      if (typeof file !== 'string' || file === '') throw invalidOption(`${name}File must be a file path`)
      return { text: await readText(file, maxBytes), source: file, file }
    }))
  }
  if (values === undefined) return []
  const list = Array.isArray(values) ? values : [values]
  return list.map((value, index) => {
    if (typeof value !== 'string' && !Buffer.isBuffer(value)) throw invalidOption(`${name} must be PEM text (a string or a Buffer)`)
    const source = list.length > 1 ? `${name} option [${index}]` : `${name} option`
    const bytes = typeof value === 'string' ? Buffer.byteLength(value) : value.length
    if (bytes > maxBytes) throw tooLarge(source, undefined, bytes, maxBytes)
    return { text: value.toString(), source, file: undefined }
  })
}

async function readText (file: string, maxBytes: number): Promise<string> {
  try {
    return (await readRegularFile(file, maxBytes)).toString('utf8')
  } catch (err) {
    if (err instanceof FileReadError && err.code === 'TOO_LARGE') throw tooLarge(file, file, undefined, maxBytes)
    throw new MaterialError('ERR_MTLS_MATERIAL_FILE_UNREADABLE', `${file}: cannot read (${readFailureReason(err)})`, { file, cause: err })
  }
}

function tooLarge (source: string, file: string | undefined, size: number | undefined, maxBytes: number): MaterialError {
  return new MaterialError('ERR_MTLS_MATERIAL_FILE_TOO_LARGE', `${source}: ${size === undefined ? 'more than' : `${size} bytes,`} ${maxBytes} bytes is the limit (maxFileBytes); certificate material is far smaller`, { file })
}

function invalidOption (message: string): MaterialError {
  return new MaterialError('ERR_MTLS_MATERIAL_OPTION_INVALID', message)
}
