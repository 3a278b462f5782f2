import { X509Certificate, createHash, createPrivateKey, type KeyObject } from 'node:crypto'
import { createSecureContext } from 'node:tls'
import { formatName, readCertificateFields, readCrlFields, type CertificateFields, type CrlFields } from './der.js'
import { MaterialError, type MaterialErrorCode } from './errors.js'
import { FileReadError, readRegularFile } from './file-read.js'
import { fingerprint256 } from './identity.js'
import { snapshotOptions } from './option-keys.js'
import { readPemBlocks, toPem } from './pem.js'

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
  /** Certificate revocation lists (optional). */
  crlFile?: string | string[]
  crl?: PemInput | PemInput[]
  /** Largest file (or PEM option) read, in bytes. Default: 1 MiB, a Kubernetes Secret's limit and room for a big CA bundle. */
  maxFileBytes?: number
}

/** Every key of MaterialInput, for packages that take material among their own options. */
export const MATERIAL_INPUT_KEYS = ['certFile', 'cert', 'keyFile', 'key', 'passphrase', 'caFile', 'ca', 'crlFile', 'crl', 'maxFileBytes'] as const satisfies ReadonlyArray<keyof MaterialInput>

const DEFAULT_MAX_FILE_BYTES = 1024 * 1024

export interface MaterialOptions {
  /** Which end of the connection this material is for: decides the extended key usage required. */
  side: 'server' | 'client'
  /** Require our own chain to lead to one of the trusted CAs. Default: `true`. */
  verifyOwnChain?: boolean
}

/** What a status page shows of a certificate. */
export interface CertificateSummary {
  readonly subject: string
  readonly issuer: string
  readonly commonName: string | null
  readonly uris: readonly string[]
  readonly dnsNames: readonly string[]
  readonly ips: readonly string[]
  readonly emails: readonly string[]
  readonly serialNumber: string
  readonly fingerprint256: string
  readonly notBefore: Date
  readonly notAfter: Date
  readonly isCa: boolean
}

export interface CrlSummary {
  readonly issuer: string
  readonly thisUpdate: Date
  readonly nextUpdate: Date | null
  readonly revokedCount: number
}

/** Validated certificate material, ready for `tls.createSecureContext`. Frozen. */
export interface Material {
  /** Leaf and intermediates, PEM. */
  readonly cert: string
  /** The private key, unencrypted PKCS#8 PEM (in memory only). */
  readonly key: string
  /** Each trusted CA certificate, PEM. */
  readonly ca: readonly string[]
  /** Each CRL, PEM; empty when none was given. */
  readonly crl: readonly string[]
  readonly leaf: CertificateSummary
  readonly intermediates: readonly CertificateSummary[]
  readonly authorities: readonly CertificateSummary[]
  readonly crls: readonly CrlSummary[]
  /** The files it was read from. */
  readonly files: readonly string[]
  /** SHA-256 over every input byte: equal digests mean nothing changed. */
  readonly digest: string
  readonly loadedAt: Date
}

/** Raw inputs read from files or taken from options, before validation. */
export interface MaterialPems {
  readonly cert: Item
  readonly key: Item
  readonly ca: Item[]
  readonly crl: Item[]
  readonly passphrase: string | undefined
  readonly digest: string
}

interface Item {
  readonly text: string
  /** A file name, or a description such as `cert option`. */
  readonly source: string
  readonly file: string | undefined
}

const EKU = { server: '1.3.6.1.5.5.7.3.1', client: '1.3.6.1.5.5.7.3.2' }

/** Reads (or takes) and validates certificate material; throws MaterialError naming the file and the reason. */
export async function loadMaterial (input: MaterialInput, options: MaterialOptions): Promise<Material> {
  return validateMaterial(await readMaterial(input), options)
}

/** Reads every input of a material set together, without validating it. */
export async function readMaterial (given: MaterialInput): Promise<MaterialPems> {
  const input = snapshotOptions(given) // read once; a polluted Object.prototype adds no file
  const maxBytes = input.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES
  if (!Number.isInteger(maxBytes) || maxBytes <= 0) throw invalidOption(`maxFileBytes must be a positive whole number of bytes; got ${JSON.stringify(maxBytes)}`)
  const one = async (name: 'cert' | 'key'): Promise<Item> => {
    const items = await readItems(name, input[`${name}File`], input[name], maxBytes)
    if (items.length !== 1) throw invalidOption(`give exactly one of ${name}File or ${name}`)
    return items[0] as Item
  }
  const [cert, key, ca, crl] = await Promise.all([
    one('cert'),
    one('key'),
    readItems('ca', input.caFile, input.ca, maxBytes),
    readItems('crl', input.crlFile, input.crl, maxBytes)
  ])
  if (ca.length === 0) throw invalidOption('give caFile or ca: the CA certificates that peers must chain to')
  const hash = createHash('sha256')
  for (const item of [cert, key, ...ca, ...crl]) hash.update(item.source).update('\0').update(item.text).update('\0')
  hash.update(input.passphrase ?? '')
  return { cert, key, ca, crl, passphrase: input.passphrase, digest: hash.digest('hex') }
}

async function readItems (name: string, files: string | string[] | undefined, values: PemInput | PemInput[] | undefined, maxBytes: number): Promise<Item[]> {
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
    const code = (err as NodeJS.ErrnoException).code
    const reason = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'is a directory' : (err as Error).message
    throw new MaterialError('ERR_MTLS_MATERIAL_FILE_UNREADABLE', `${file}: cannot read (${reason})`, { file, cause: err })
  }
}

function tooLarge (source: string, file: string | undefined, size: number | undefined, maxBytes: number): MaterialError {
  return new MaterialError('ERR_MTLS_MATERIAL_FILE_TOO_LARGE', `${source}: ${size === undefined ? 'more than' : `${size} bytes,`} ${maxBytes} bytes is the limit (maxFileBytes); certificate material is far smaller`, { file })
}

/**
 * Validates material: key matches the leaf, leaf and intermediates within their validity, our chain leads
 * to a trusted CA, the leaf's extended key usage fits its side, CRLs readable and current. A pure function
 * of its inputs and the clock.
 */
export function validateMaterial (pems: MaterialPems, options: MaterialOptions, now = Date.now()): Material {
  if (options.side !== 'server' && options.side !== 'client') throw invalidOption(`side must be 'server' or 'client'; got ${JSON.stringify(options.side)}`)
  const chain = certificates(pems.cert, 'ERR_MTLS_MATERIAL_NO_PEM')
  const leaf = chain[0] as X509Certificate
  const privateKey = readKey(pems.key, pems.passphrase)
  if (!leaf.checkPrivateKey(privateKey)) {
    // A CA certificate where the leaf belongs is a mix-up of files, not a wrong key: say so, before blaming the key.
    if (fieldsOf(leaf).isCa) throw caWhereLeafBelongs(chain, privateKey, pems)
    throw fail('ERR_MTLS_MATERIAL_KEY_MISMATCH', pems.key, `the private key does not belong to the certificate in ${pems.cert.source} (${leaf.subject.replaceAll('\n', ', ')})`)
  }
  chain.forEach((cert, index) => checkValidity(cert, index === 0 ? 'the certificate' : `intermediate ${index}`, pems.cert, now))

  const authorities = pems.ca.flatMap(item => certificates(item, 'ERR_MTLS_MATERIAL_CA_EMPTY'))
  if (options.verifyOwnChain !== false) checkChain(chain, authorities, pems)
  checkExtendedKeyUsage(leaf, options.side, pems.cert)
  const crls = pems.crl.flatMap(item => readCrls(item, now))

  const leafSummary = summarize(leaf)
  const cert = chain.map(cert => toPem(cert.raw, 'CERTIFICATE')).join('')
  const key = privateKey.export({ type: 'pkcs8', format: 'pem' }) as string
  const ca = authorities.map(cert => toPem(cert.raw, 'CERTIFICATE'))
  const crl = crls.map(crl => crl.pem)
  checkTlsAccepts({ cert, key, ca, crl }, pems)
  return Object.freeze({
    cert,
    key,
    ca: Object.freeze(ca),
    crl: Object.freeze(crl),
    leaf: leafSummary,
    intermediates: Object.freeze(chain.slice(1).map(summarize)),
    authorities: Object.freeze(authorities.map(summarize)),
    crls: Object.freeze(crls.map(crl => crl.summary)),
    files: Object.freeze([pems.cert, pems.key, ...pems.ca, ...pems.crl].flatMap(item => item.file === undefined ? [] : [item.file])),
    digest: pems.digest,
    loadedAt: new Date(now)
  })
}

// Each certificate's DER is walked once per load, however many checks and summaries look at it.
const fieldCache = new WeakMap<X509Certificate, CertificateFields>()
function fieldsOf (cert: X509Certificate): CertificateFields {
  let fields = fieldCache.get(cert)
  if (fields === undefined) fieldCache.set(cert, fields = readCertificateFields(cert.raw))
  return fields
}

/** Summarises a certificate for a status page. */
export function summarize (cert: X509Certificate): CertificateSummary {
  const der = cert.raw
  const fields = fieldsOf(cert)
  return Object.freeze({
    subject: formatName(der, fields.subject),
    issuer: formatName(der, fields.issuer),
    commonName: fields.commonName,
    uris: Object.freeze(fields.uris),
    dnsNames: Object.freeze(fields.dnsNames),
    ips: Object.freeze(fields.ips),
    emails: Object.freeze(fields.emails),
    serialNumber: fields.serialNumber,
    fingerprint256: fingerprint256(der),
    // Copies: the fields are shared (the verifier reads them), and a Date can be changed.
    notBefore: new Date(fields.notBefore.getTime()),
    notAfter: new Date(fields.notAfter.getTime()),
    isCa: fields.isCa
  })
}

/** Seconds until a certificate expires (negative once it has). */
export function secondsToExpiry (cert: Pick<CertificateSummary, 'notAfter'>, now = Date.now()): number {
  return Math.floor((cert.notAfter.getTime() - now) / 1000)
}

/** The material as options for `tls.createSecureContext` / `tls.connect` (cert, key, ca, and crl when given). */
export function secureContextOptions (material: Material): { cert: string, key: string, ca: string[], crl?: string[] } {
  const options: { cert: string, key: string, ca: string[], crl?: string[] } = { cert: material.cert, key: material.key, ca: [...material.ca] }
  if (material.crl.length > 0) options.crl = [...material.crl]
  return options
}

function certificates (item: Item, emptyCode: MaterialErrorCode): X509Certificate[] {
  const blocks = readPemBlocks(item.text).filter(block => block.label === 'CERTIFICATE')
  if (blocks.length === 0) {
    throw fail(emptyCode, item, emptyCode === 'ERR_MTLS_MATERIAL_CA_EMPTY' ? 'no CA certificate (-----BEGIN CERTIFICATE-----) found' : 'no certificate (-----BEGIN CERTIFICATE-----) found')
  }
  return blocks.map((block, index) => {
    try {
      const cert = new X509Certificate(block.der)
      fieldsOf(cert) // read (and so checked) here; summaries and usage checks reuse it
      return cert
    } catch (err) {
      throw fail('ERR_MTLS_MATERIAL_CERT_MALFORMED', item, `certificate ${index + 1} is malformed (${(err as Error).message})`, err)
    }
  })
}

function readKey (item: Item, passphrase: string | undefined): KeyObject {
  if (!readPemBlocks(item.text).some(block => block.label.endsWith('PRIVATE KEY'))) {
    throw fail('ERR_MTLS_MATERIAL_NO_PEM', item, 'no private key (-----BEGIN PRIVATE KEY----- or similar) found')
  }
  const encrypted = item.text.includes('ENCRYPTED')
  if (encrypted && passphrase === undefined) throw fail('ERR_MTLS_MATERIAL_KEY_UNREADABLE', item, 'cannot read the private key: the key is encrypted and no passphrase was given')
  try {
    return createPrivateKey(passphrase === undefined ? item.text : { key: item.text, passphrase })
  } catch (err) {
    const reason = encrypted ? 'wrong passphrase' : (err as Error).message
    throw fail('ERR_MTLS_MATERIAL_KEY_UNREADABLE', item, `cannot read the private key: ${reason}`, err)
  }
}

// What the TLS layer would refuse when the material is applied (a key below OpenSSL's security level, an
// unusable CRL) is refused here, while the old material still serves.
function checkTlsAccepts (options: { cert: string, key: string, ca: string[], crl: string[] }, pems: MaterialPems): void {
  try {
    createSecureContext({ cert: options.cert, key: options.key, ca: options.ca, ...(options.crl.length > 0 ? { crl: options.crl } : {}) })
  } catch (err) {
    const code = (err as { code?: string }).code
    throw fail('ERR_MTLS_MATERIAL_REFUSED_BY_TLS', pems.cert, `the TLS layer refuses this material: ${(err as Error).message}${code === undefined ? '' : ` (${code})`}`, err)
  }
}

function checkValidity (cert: X509Certificate, what: string, item: Item, now: number): void {
  const notBefore = new Date(cert.validFrom)
  const notAfter = new Date(cert.validTo)
  if (notBefore.getTime() > now) throw fail('ERR_MTLS_MATERIAL_NOT_YET_VALID', item, `${what} is not valid until ${notBefore.toISOString()}`)
  if (notAfter.getTime() < now) throw fail('ERR_MTLS_MATERIAL_EXPIRED', item, `${what} expired at ${notAfter.toISOString()}`)
}

function checkChain (chain: X509Certificate[], authorities: X509Certificate[], pems: MaterialPems): void {
  const issuedBy = (cert: X509Certificate, candidate: X509Certificate): boolean => cert.checkIssued(candidate) && cert.verify(candidate.publicKey)
  let current = chain[0] as X509Certificate
  const seen = new Set<X509Certificate>()
  for (let depth = 0; depth < 10; depth++) {
    if (authorities.some(ca => issuedBy(current, ca) || ca.fingerprint256 === current.fingerprint256)) return
    const next = chain.find(cert => !seen.has(cert) && cert !== current && issuedBy(current, cert))
    if (next === undefined) break
    seen.add(next)
    current = next
  }
  const cas = pems.ca.map(item => item.source).join(', ')
  const leaf = chain[0] as X509Certificate
  // The likely cause when the leaf came alone and a CA the trust does not hold issued it: the intermediate was left out.
  const leafAlone = chain.length === 1 && !leaf.checkIssued(leaf) && !authorities.some(ca => ca.subject === leaf.issuer)
  const hint = !leafAlone
    ? ''
    : `; ${pems.cert.file === undefined ? 'the cert option' : 'the file'} holds only the leaf, and its issuer is not a trusted CA: if that issuer is an intermediate CA, give the chain file instead, ` +
      'the leaf followed by the intermediate (mtls-pki writes it as NAME-chain.pem beside NAME.pem; with cert-manager, tls.crt holds the chain)'
  throw fail('ERR_MTLS_MATERIAL_UNTRUSTED_CHAIN', pems.cert, `the chain does not lead to any trusted CA in ${cas} (no CA issued ${JSON.stringify(current.issuer.replaceAll('\n', ', '))}'s certificate)${hint}`)
}

// What a CA certificate first in the certificate input most likely means, from where the private key's certificate is.
function caWhereLeafBelongs (chain: X509Certificate[], key: KeyObject, pems: MaterialPems): MaterialError {
  const fromFiles = pems.cert.file !== undefined
  const what = `the ${fromFiles ? 'certificate file' : 'cert option'} holds a CA certificate (CA:TRUE, ${JSON.stringify((chain[0] as X509Certificate).subject.replaceAll('\n', ', '))})`
  const later = chain.findIndex((cert, index) => index > 0 && cert.checkPrivateKey(key))
  if (later > 0) return fail('ERR_MTLS_MATERIAL_CERT_IS_CA', pems.cert, `${what} first: the leaf must come first (the private key belongs to certificate ${later + 1} of it)`)
  const swapped = fromFiles ? 'certFile and caFile' : 'cert and ca'
  const keyIn = pems.ca.find(item => readPemBlocks(item.text).some(block => {
    try {
      return block.label === 'CERTIFICATE' && new X509Certificate(block.der).checkPrivateKey(key)
    } catch {
      return false
    }
  }))
  return fail('ERR_MTLS_MATERIAL_CERT_IS_CA', pems.cert, keyIn === undefined
    ? `${what} where the leaf belongs: ${swapped} swapped?`
    : `${what} where the leaf belongs: ${swapped} are swapped (the private key belongs to the certificate in ${keyIn.source})`)
}

function checkExtendedKeyUsage (leaf: X509Certificate, side: 'server' | 'client', item: Item): void {
  const usages = fieldsOf(leaf).extendedKeyUsages
  // anyExtendedKeyUsage does not do: OpenSSL's peers refuse a certificate whose extended key usage lacks the side.
  if (usages === null || usages.includes(EKU[side])) return
  const wanted = side === 'server' ? 'serverAuth' : 'clientAuth'
  throw fail('ERR_MTLS_MATERIAL_EKU_UNSUITABLE', item, `the certificate's extended key usage lacks ${wanted}, so it cannot serve as a TLS ${side}`)
}

function readCrls (item: Item, now: number): Array<{ pem: string, summary: CrlSummary }> {
  const blocks = readPemBlocks(item.text).filter(block => block.label === 'X509 CRL')
  if (blocks.length === 0) throw fail('ERR_MTLS_MATERIAL_NO_PEM', item, 'no CRL (-----BEGIN X509 CRL-----) found')
  return blocks.map((block, index) => {
    let crl: CrlFields
    try {
      crl = readCrlFields(block.der)
    } catch (err) {
      throw fail('ERR_MTLS_MATERIAL_CRL_MALFORMED', item, `CRL ${index + 1} is malformed (${(err as Error).message})`, err)
    }
    const issuer = formatName(block.der, crl.issuer)
    // OpenSSL refuses every peer certificate once a loaded CRL is past its next update.
    if (crl.nextUpdate !== null && crl.nextUpdate.getTime() < now) {
      throw fail('ERR_MTLS_MATERIAL_CRL_EXPIRED', item, `CRL ${index + 1} (${issuer}) was due for renewal at ${crl.nextUpdate.toISOString()}`)
    }
    return {
      pem: block.pem,
      summary: Object.freeze({ issuer, thisUpdate: crl.thisUpdate, nextUpdate: crl.nextUpdate, revokedCount: crl.revoked.size })
    }
  })
}

function fail (code: MaterialErrorCode, item: Item, reason: string, cause?: unknown): MaterialError {
  return new MaterialError(code, `${item.source}: ${reason}`, { file: item.file, cause })
}

function invalidOption (message: string): MaterialError {
  return new MaterialError('ERR_MTLS_MATERIAL_OPTION_INVALID', message)
}
