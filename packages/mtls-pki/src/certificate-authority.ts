import { randomBytes } from 'node:crypto'
import { isIP } from 'node:net'
import { AsnConvert } from '@peculiar/asn1-schema'
import {
  CRLNumber,
  DistributionPointName,
  GeneralName,
  IssuingDistributionPoint,
  id_ce_cRLNumber as crlNumberOid,
  id_ce_issuingDistributionPoint as issuingDistributionPointOid
} from '@peculiar/asn1-x509'
import { PkiError } from './errors.js'
import { generateKeyPair, importSigningKey, keyAlgorithm, type KeyType } from './key-types.js'
import { fingerprint256 } from './fingerprint.js'
import { toPem } from './pem.js'
import { checkOptionKeys, VALIDITY_KEYS } from './option-keys.js'
import { startOcspResponder, type OcspResponder, type OcspResponderOptions } from './ocsp-responder.js'
import { DAY_MS, resolveValidity, type ValidityOptions } from './validity.js'
import { subtle, x509, type CryptoKey } from './x509.js'

/** What a leaf certificate is for: its extended key usages. */
export type CertificateUsage = 'client' | 'server' | 'both'

export type KeyUsageName = keyof typeof x509.KeyUsageFlags

export type ExtendedKeyUsageName = keyof typeof x509.ExtendedKeyUsage

export interface CertificateAuthorityOptions extends ValidityOptions {
  /** Subject common name. Default: `mtls-pki root CA` or `mtls-pki intermediate CA`. */
  commonName?: string
  /** Default: `p256`. */
  keyType?: KeyType
}

type IntermediateOptions = CertificateAuthorityOptions & { pathLength?: number }

export interface IssueOptions extends ValidityOptions {
  /** Subject common name. Default: the first DNS name, else the last segment of the SPIFFE ID path. */
  commonName?: string
  /** The SPIFFE ID, written as the first URI SAN. Not checked, so that tests can make invalid ones. */
  spiffeId?: string
  /** More URI SANs, after the SPIFFE ID. */
  uris?: string[]
  dnsNames?: string[]
  /** IPv4 or IPv6 addresses. */
  ips?: string[]
  emails?: string[]
  /** Extended key usages: `clientAuth`, `serverAuth` or both. Default: `both`. */
  usage?: CertificateUsage
  /** Replaces the key usage bits; `null` leaves the extension out. Default: `digitalSignature` (plus `keyEncipherment` for RSA). */
  keyUsages?: KeyUsageName[] | null
  /** Replaces `usage`; an empty list leaves the extension out. */
  extendedKeyUsages?: ExtendedKeyUsageName[]
  /** Marks the leaf `CA:TRUE` with `keyCertSign`: a misissued certificate for tests of the checks that refuse it. */
  isCa?: boolean
  /** Default: `p256`. */
  keyType?: KeyType
  /** URIs written as the cRLDistributionPoints extension: the CRL shards (see `CrlOptions.issuingDistributionPoint`) that cover this certificate. */
  crlDistributionPoints?: string[]
  /** The OCSP responder's URL, written as the authorityInfoAccess extension (id-ad-ocsp), as `startOcspResponder().url` gives it. */
  ocspUrl?: string
  /** Writes the TLS feature extension with status_request (RFC 7633, "OCSP must-staple"): a TLS peer must get a stapled OCSP response. */
  mustStaple?: boolean
}

/** A certificate issued by a CertificateAuthority, all in PEM. */
export interface IssuedCertificate {
  /** The leaf certificate. */
  readonly certificate: string
  /** The leaf's private key, PKCS#8. */
  readonly key: string
  /** The leaf followed by the issuing CAs below the root: what a TLS peer sends. */
  readonly chain: string
  /** The root certificate: what a TLS peer trusts. */
  readonly ca: string
  /** Uppercase hex, as Node's `X509Certificate#serialNumber`. */
  readonly serialNumber: string
  /** As Node's `X509Certificate#fingerprint256`. */
  readonly fingerprint256: string
  readonly notBefore: Date
  readonly notAfter: Date
  readonly keyType: KeyType
  /** The URIs of its cRLDistributionPoints extension; empty without one. */
  readonly crlDistributionPoints: readonly string[]
  /** The OCSP URL of its authorityInfoAccess extension; `null` without one. */
  readonly ocspUrl: string | null
  /** Whether it carries the TLS feature extension with status_request (must-staple). */
  readonly mustStaple: boolean
}

/** A certificate a CA signed (a leaf or an intermediate), as its OCSP responder's index lists it. */
export interface IssuedRecord {
  /** Uppercase hex, as Node's `X509Certificate#serialNumber`. */
  readonly serialNumber: string
  readonly subject: string
  readonly notAfter: Date
}

/** Why a certificate was revoked, as the CRL entry's reason code says. */
export type RevocationReason = keyof typeof x509.X509CrlReason

export interface RevokeOptions {
  /** Default: now. */
  date?: Date
  /** Default: `unspecified`. */
  reason?: RevocationReason
}

export interface CrlOptions {
  /** Default: now. */
  thisUpdate?: Date
  /** Default: `thisUpdate` plus `days`. */
  nextUpdate?: Date
  /** Default: 7. */
  days?: number
  /**
   * Makes the CRL a shard: a critical issuingDistributionPoint extension with this URI, listing only the revoked
   * certificates whose cRLDistributionPoints name it (and those revoked by serial alone, whose points are unknown).
   * Default: none, a CRL that lists every revoked certificate.
   */
  issuingDistributionPoint?: string
}

export interface RevokedCertificate {
  readonly serialNumber: string
  readonly date: Date
  readonly reason: RevocationReason
  /** The revoked certificate's CRL distribution points; `null` when unknown (revoked by serial): every shard lists it. */
  readonly crlDistributionPoints: readonly string[] | null
}

/** What `revoke` takes: a serial number, or a certificate's serial number and (when known) its CRL distribution points. */
export type RevocationTarget = string | { readonly serialNumber: string, readonly crlDistributionPoints?: readonly string[] | null }

// RFC 7633: the TLS feature extension; its value SEQUENCE { INTEGER 5 } asks for status_request (OCSP stapling).
const TLS_FEATURE_OID = '1.3.6.1.5.5.7.1.24'
const TLS_FEATURE_STATUS_REQUEST = new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x05]).buffer

const DEFAULT_DAYS = { root: 3650, intermediate: 1825, leaf: 90 }

// Every option each method knows; any other key is refused (checkOptionKeys).
const CA_KEYS = [...VALIDITY_KEYS, 'commonName', 'keyType'] as const satisfies ReadonlyArray<keyof CertificateAuthorityOptions>
const INTERMEDIATE_KEYS = [...CA_KEYS, 'pathLength'] as const satisfies ReadonlyArray<keyof IntermediateOptions>
const ISSUE_KEYS = [
  ...VALIDITY_KEYS, 'commonName', 'spiffeId', 'uris', 'dnsNames', 'ips', 'emails', 'usage', 'keyUsages', 'extendedKeyUsages', 'isCa', 'keyType',
  'crlDistributionPoints', 'ocspUrl', 'mustStaple'
] as const satisfies ReadonlyArray<keyof IssueOptions>
const REVOKE_KEYS = ['date', 'reason'] as const satisfies ReadonlyArray<keyof RevokeOptions>
const CRL_KEYS = ['thisUpdate', 'nextUpdate', 'days', 'issuingDistributionPoint'] as const satisfies ReadonlyArray<keyof CrlOptions>

/**
 * A certificate authority: a CA certificate and its key. Issues leaves and intermediates, keeps a revocation
 * list and signs CRLs. Made with `createRootCa()`, `ca.createIntermediate()` or `loadCertificateAuthority()`.
 */
export class CertificateAuthority {
  /** This CA's certificate. */
  readonly certificate: string
  /** This CA's private key, PKCS#8. */
  readonly key: string
  readonly keyType: KeyType
  readonly subject: string
  readonly serialNumber: string
  readonly fingerprint256: string
  readonly notBefore: Date
  readonly notAfter: Date
  /** The CA that signed this one; `null` for a root. */
  readonly parent: CertificateAuthority | null

  readonly #cert: x509.X509Certificate
  readonly #signingKey: CryptoKey
  readonly #revoked = new Map<string, RevokedCertificate>()
  readonly #issued = new Map<string, IssuedRecord>()
  // Told of every certificate issued or revoked: a running OCSP responder rewrites its index.
  readonly #changeListeners = new Set<() => void>()
  #crlNumber = 0

  private constructor (cert: x509.X509Certificate, signingKey: CryptoKey, key: string, keyType: KeyType, parent: CertificateAuthority | null) {
    this.#cert = cert
    this.#signingKey = signingKey
    this.certificate = toPem(cert.rawData, 'CERTIFICATE')
    this.key = key
    this.keyType = keyType
    this.subject = cert.subject
    this.serialNumber = normalizeSerial(cert.serialNumber)
    this.fingerprint256 = fingerprint256(cert.rawData)
    this.notBefore = cert.notBefore
    this.notAfter = cert.notAfter
    this.parent = parent
  }

  /** Makes a self-signed root CA. */
  static async createRoot (options: CertificateAuthorityOptions = {}): Promise<CertificateAuthority> {
    checkOptionKeys(options, CA_KEYS, 'createRoot')
    const keyType = options.keyType ?? 'p256'
    const validity = resolveValidity(options, DEFAULT_DAYS.root)
    const keys = await generateKeyPair(keyType)
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: randomSerial(),
      name: subjectName(options.commonName ?? 'mtls-pki root CA'),
      ...validity,
      keys,
      signingAlgorithm: keyAlgorithm(keyType).sign,
      extensions: [
        new x509.BasicConstraintsExtension(true, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey)
      ]
    })
    return new CertificateAuthority(cert, keys.privateKey, await exportKey(keys.privateKey), keyType, null)
  }

  /** Rebuilds a CA from its PEM certificate and key, for example as `mtls-pki init` wrote them. */
  static async fromPem (certificate: string, key: string, parent: CertificateAuthority | null = null, file?: string): Promise<CertificateAuthority> {
    let cert: x509.X509Certificate
    try {
      cert = new x509.X509Certificate(certificate)
    } catch (err) {
      throw new PkiError('ERR_MTLS_PKI_MALFORMED_INPUT', `${file ?? 'CA certificate'}: not a readable certificate (${(err as Error).message})`, { file, cause: err })
    }
    const { keyType, privateKey } = await importSigningKey(key, file)
    return new CertificateAuthority(cert, privateKey, key, keyType, parent)
  }

  /** The root of this CA's hierarchy (itself for a root). */
  get root (): CertificateAuthority {
    return this.parent === null ? this : this.parent.root
  }

  /** This CA's certificate followed by its parents, the root left out: what follows a leaf in a TLS chain. */
  get chain (): string {
    return this.parent === null ? '' : this.certificate + this.parent.chain
  }

  /** Makes a CA under this one. `pathLength` 0 (the default) lets it sign leaves only. */
  async createIntermediate (options: IntermediateOptions = {}): Promise<CertificateAuthority> {
    checkOptionKeys(options, INTERMEDIATE_KEYS, 'createIntermediate')
    const keyType = options.keyType ?? 'p256'
    const validity = resolveValidity(options, DEFAULT_DAYS.intermediate)
    const keys = await generateKeyPair(keyType)
    const cert = await this.#sign(subjectName(options.commonName ?? 'mtls-pki intermediate CA'), keys.publicKey, validity, [
      new x509.BasicConstraintsExtension(true, options.pathLength ?? 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true)
    ])
    this.#record(cert)
    return new CertificateAuthority(cert, keys.privateKey, await exportKey(keys.privateKey), keyType, this)
  }

  /** Issues a leaf certificate with a fresh key. */
  async issue (options: IssueOptions = {}): Promise<IssuedCertificate> {
    checkOptionKeys(options, ISSUE_KEYS, 'issue')
    const keyType = options.keyType ?? 'p256'
    const validity = resolveValidity(options, DEFAULT_DAYS.leaf)
    const names = generalNames(options)
    const crlDistributionPoints = uriList(options.crlDistributionPoints, 'issue: crlDistributionPoints')
    const ocspUrl = options.ocspUrl ?? null
    if (ocspUrl !== null) checkUri(ocspUrl, 'issue: ocspUrl')
    const mustStaple = options.mustStaple ?? false
    if (typeof mustStaple !== 'boolean') throw new PkiError('ERR_MTLS_PKI_INVALID_OPTION', `issue: mustStaple must be true or false; got ${JSON.stringify(mustStaple)}`)
    const commonName = options.commonName ?? options.dnsNames?.[0] ?? lastPathSegment(options.spiffeId)
    const keys = await generateKeyPair(keyType)

    const extensions: x509.Extension[] = [new x509.BasicConstraintsExtension(options.isCa === true, undefined, true)]
    if (options.keyUsages !== null) extensions.push(new x509.KeyUsagesExtension(keyUsageFlags(options, keyType), true))
    const extendedKeyUsages = options.extendedKeyUsages ?? usageToEku(options.usage ?? 'both')
    if (extendedKeyUsages.length > 0) {
      extensions.push(new x509.ExtendedKeyUsageExtension(extendedKeyUsages.map(ekuOid)))
    }
    if (names.length > 0) {
      // RFC 5280 4.2.1.6: with an empty subject the SAN extension must be critical.
      extensions.push(new x509.SubjectAlternativeNameExtension(names, commonName === undefined))
    }
    if (crlDistributionPoints.length > 0) extensions.push(new x509.CRLDistributionPointsExtension(crlDistributionPoints))
    if (ocspUrl !== null) extensions.push(new x509.AuthorityInfoAccessExtension({ ocsp: [ocspUrl] }))
    if (mustStaple) extensions.push(new x509.Extension(TLS_FEATURE_OID, false, TLS_FEATURE_STATUS_REQUEST))

    const cert = await this.#sign(subjectName(commonName), keys.publicKey, validity, extensions)
    this.#record(cert)
    const certificate = toPem(cert.rawData, 'CERTIFICATE')
    return Object.freeze({
      certificate,
      key: await exportKey(keys.privateKey),
      chain: certificate + this.certificate + (this.parent?.chain ?? ''),
      ca: this.root.certificate,
      serialNumber: normalizeSerial(cert.serialNumber),
      fingerprint256: fingerprint256(cert.rawData),
      notBefore: cert.notBefore,
      notAfter: cert.notAfter,
      keyType,
      crlDistributionPoints: Object.freeze(crlDistributionPoints),
      ocspUrl,
      mustStaple
    })
  }

  /** The certificates this CA signed in this process (or, loaded from a CA directory, those it recorded): its OCSP responder answers `good` for them. */
  get issued (): readonly IssuedRecord[] {
    return [...this.#issued.values()]
  }

  /**
   * Starts the real OpenSSL OCSP responder (`openssl ocsp`) over this CA: it answers for what this CA issued
   * (`good`), revoked (`revoked`, also revocations made after it started) and nothing else (`unknown`).
   */
  async startOcspResponder (options: OcspResponderOptions = {}): Promise<OcspResponder> {
    return await startOcspResponder(this, options, listener => {
      this.#changeListeners.add(listener)
      return () => { this.#changeListeners.delete(listener) }
    })
  }

  #record (cert: x509.X509Certificate): void {
    const serialNumber = normalizeSerial(cert.serialNumber)
    this.#issued.set(serialNumber, Object.freeze({ serialNumber, subject: cert.subject, notAfter: cert.notAfter }))
    for (const listener of this.#changeListeners) listener()
  }

  /**
   * Adds a certificate this CA issued to its revocation list; the next CRL lists it, and so does every shard
   * named by its `crlDistributionPoints` (every shard when only the serial number is given).
   */
  revoke (certificate: RevocationTarget, options: RevokeOptions = {}): RevokedCertificate {
    checkOptionKeys(options, REVOKE_KEYS, 'revoke')
    const serialNumber = normalizeSerial(typeof certificate === 'string' ? certificate : certificate.serialNumber)
    const points = typeof certificate === 'string' ? undefined : certificate.crlDistributionPoints
    const crlDistributionPoints = points === undefined || points === null ? null : Object.freeze(uriList(points, 'revoke: crlDistributionPoints'))
    if (!/^[0-9A-F]+$/.test(serialNumber)) {
      throw new PkiError('ERR_MTLS_PKI_INVALID_OPTION', `serial number must be hexadecimal; got ${JSON.stringify(serialNumber)}`)
    }
    const reason = options.reason ?? 'unspecified'
    if (!(reason in x509.X509CrlReason) || typeof x509.X509CrlReason[reason] !== 'number') {
      throw new PkiError('ERR_MTLS_PKI_INVALID_OPTION', `unknown revocation reason ${JSON.stringify(reason)}`)
    }
    const entry = Object.freeze({ serialNumber, date: options.date ?? new Date(), reason, crlDistributionPoints })
    this.#revoked.set(serialNumber, entry)
    for (const listener of this.#changeListeners) listener()
    return entry
  }

  /** The certificates revoked so far. */
  get revoked (): readonly RevokedCertificate[] {
    return [...this.#revoked.values()]
  }

  /** Signs a CRL of this CA's revocation list. */
  async createCrl (options: CrlOptions = {}): Promise<string> {
    checkOptionKeys(options, CRL_KEYS, 'createCrl')
    const shard = options.issuingDistributionPoint
    if (shard !== undefined) checkUri(shard, 'createCrl: issuingDistributionPoint')
    const thisUpdate = options.thisUpdate ?? new Date()
    const nextUpdate = options.nextUpdate ?? new Date(thisUpdate.getTime() + (options.days ?? 7) * DAY_MS)
    // RFC 5280 5.2.3: CRL numbers only increase, across runs of the CLI too: milliseconds since the epoch,
    // and always one more than the last number this CA used.
    this.#crlNumber = Math.max(this.#crlNumber + 1, Date.now())
    const extensions = [
      await x509.AuthorityKeyIdentifierExtension.create(this.#cert.publicKey),
      new x509.Extension(crlNumberOid, false, AsnConvert.serialize(new CRLNumber(this.#crlNumber)))
    ]
    if (shard !== undefined) extensions.push(issuingDistributionPointExtension(shard))
    const crl = await x509.X509CrlGenerator.create({
      issuer: this.#cert.subject,
      thisUpdate,
      nextUpdate,
      signingKey: this.#signingKey,
      signingAlgorithm: keyAlgorithm(this.keyType).sign,
      entries: this.revoked.filter(entry => shard === undefined || listedInShard(entry, shard)).map(entry => ({
        serialNumber: entry.serialNumber,
        revocationDate: entry.date,
        reason: x509.X509CrlReason[entry.reason]
      })),
      extensions
    })
    return toPem(crl.rawData, 'X509 CRL')
  }

  /**
   * Signs a CRL for this CA and for every CA above it. Node turns on OpenSSL's CRL check for the whole chain
   * once it is given any CRL, so a server needs one from each CA, not only from the leaf's issuer. The list
   * fits Node's `crl` option as it is; joined, it is a CRL file. An `issuingDistributionPoint` makes this CA's
   * CRL a shard; the CRLs above stay whole, since no CA certificate names a distribution point.
   */
  async createCrls (options: CrlOptions = {}): Promise<string[]> {
    checkOptionKeys(options, CRL_KEYS, 'createCrls')
    const own = await this.createCrl(options)
    if (this.parent === null) return [own]
    const { thisUpdate, nextUpdate, days } = options
    return [own, ...await this.parent.createCrls({ thisUpdate, nextUpdate, days })]
  }

  async #sign (subject: x509.JsonName, publicKey: CryptoKey, validity: { notBefore: Date, notAfter: Date }, extensions: x509.Extension[]): Promise<x509.X509Certificate> {
    return await x509.X509CertificateGenerator.create({
      serialNumber: randomSerial(),
      subject,
      issuer: this.#cert.subject,
      ...validity,
      publicKey,
      signingKey: this.#signingKey,
      signingAlgorithm: keyAlgorithm(this.keyType).sign,
      extensions: [
        ...extensions,
        await x509.SubjectKeyIdentifierExtension.create(publicKey),
        await x509.AuthorityKeyIdentifierExtension.create(this.#cert.publicKey)
      ]
    })
  }
}

/** Makes a self-signed root CA. */
export async function createRootCa (options: CertificateAuthorityOptions = {}): Promise<CertificateAuthority> {
  checkOptionKeys(options, CA_KEYS, 'createRootCa')
  return await CertificateAuthority.createRoot(options)
}

function generalNames (options: IssueOptions): x509.JsonGeneralName[] {
  const names: x509.JsonGeneralName[] = []
  for (const uri of [...(options.spiffeId === undefined ? [] : [options.spiffeId]), ...(options.uris ?? [])]) {
    names.push({ type: 'url', value: uri })
  }
  for (const dns of options.dnsNames ?? []) names.push({ type: 'dns', value: dns })
  for (const ip of options.ips ?? []) {
    if (isIP(ip) === 0) throw new PkiError('ERR_MTLS_PKI_INVALID_OPTION', `ips: ${JSON.stringify(ip)} is not an IPv4 or IPv6 address`)
    names.push({ type: 'ip', value: ip })
  }
  for (const email of options.emails ?? []) names.push({ type: 'email', value: email })
  return names
}

// RFC 5280 5.2.5: critical, so that a relying party that cannot honour the scope does not take a shard for the whole CRL.
function issuingDistributionPointExtension (uri: string): x509.Extension {
  const point = new IssuingDistributionPoint({ distributionPoint: new DistributionPointName({ fullName: [new GeneralName({ uniformResourceIdentifier: uri })] }) })
  return new x509.Extension(issuingDistributionPointOid, true, AsnConvert.serialize(point))
}

// A certificate revoked by serial alone may be under any distribution point: every shard lists it, which can only refuse more.
function listedInShard (entry: RevokedCertificate, shard: string): boolean {
  return entry.crlDistributionPoints === null || entry.crlDistributionPoints.includes(shard)
}

function uriList (value: unknown, what: string): string[] {
  if (value === undefined) return []
  if (!Array.isArray(value)) throw new PkiError('ERR_MTLS_PKI_INVALID_OPTION', `${what} must be a list of URIs; got ${typeof value}`)
  for (const uri of value) checkUri(uri, what)
  return [...value] as string[]
}

function checkUri (value: unknown, what: string): void {
  if (typeof value !== 'string' || !URL.canParse(value)) throw new PkiError('ERR_MTLS_PKI_INVALID_OPTION', `${what}: ${JSON.stringify(value)} is not a URI`)
}

function keyUsageFlags (options: IssueOptions, keyType: KeyType): number {
  if (options.keyUsages !== undefined && options.keyUsages !== null) {
    return options.keyUsages.reduce((flags, name) => {
      const flag = x509.KeyUsageFlags[name]
      if (typeof flag !== 'number') throw new PkiError('ERR_MTLS_PKI_INVALID_OPTION', `keyUsages: unknown key usage ${JSON.stringify(name)}`)
      return flags | flag
    }, 0)
  }
  let flags = x509.KeyUsageFlags.digitalSignature
  if (keyType.startsWith('rsa')) flags |= x509.KeyUsageFlags.keyEncipherment
  if (options.isCa === true) flags |= x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign
  return flags
}

function usageToEku (usage: CertificateUsage): ExtendedKeyUsageName[] {
  switch (usage) {
    case 'client': return ['clientAuth']
    case 'server': return ['serverAuth']
    case 'both': return ['serverAuth', 'clientAuth']
    default: throw new PkiError('ERR_MTLS_PKI_INVALID_OPTION', `usage must be 'client', 'server' or 'both'; got ${JSON.stringify(usage)}`)
  }
}

function ekuOid (name: ExtendedKeyUsageName): string {
  const oid = x509.ExtendedKeyUsage[name]
  if (typeof oid !== 'string') throw new PkiError('ERR_MTLS_PKI_INVALID_OPTION', `extendedKeyUsages: unknown usage ${JSON.stringify(name)}`)
  return oid
}

// A JSON name, not a string, so that commas or equals signs in a name are never parsed as syntax.
function subjectName (commonName: string | undefined): x509.JsonName {
  return commonName === undefined ? [] : [{ CN: [commonName] }]
}

function lastPathSegment (uri: string | undefined): string | undefined {
  const segment = uri?.split('/').pop()
  return segment === undefined || segment === '' ? undefined : segment
}

// 16 random bytes, positive and without a leading zero byte, so every tool prints the same hex.
function randomSerial (): string {
  const bytes = randomBytes(16)
  bytes[0] = ((bytes[0] as number) & 0x7f) | 0x10
  return bytes.toString('hex')
}

function normalizeSerial (serial: string): string {
  return serial.replace(/:/g, '').toUpperCase()
}

async function exportKey (privateKey: CryptoKey): Promise<string> {
  return toPem(await subtle.exportKey('pkcs8', privateKey), 'PRIVATE KEY')
}
