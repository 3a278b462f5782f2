import { X509Certificate, createHash, verify as verifySignature, type KeyObject } from 'node:crypto'
import { KEY_USAGE, TLS_EXTENDED_KEY_USAGE, formatName, readCertificateFields, readCrlFields, readSignedParts, type CertificateFields, type CrlFields, type NameRange, type SignedParts } from './der.js'
import { MaterialError, VerificationError, type VerificationErrorCode } from './errors.js'
import type { Material } from './material-validate.js'
import { readPemBlocks } from './pem.js'
import { parseSpiffeId } from './spiffe-id.js'

type PemInput = string | Buffer

export interface ChainVerifierOptions {
  /** Trusted CA certificates, PEM: a chain must end at a self-signed one of these (as OpenSSL requires). */
  ca?: PemInput | readonly PemInput[]
  /**
   * Trusted CA certificates by SPIFFE trust domain, instead of `ca`: a chain must end at a root of the bundle of
   * its leaf's own trust domain, and a leaf must carry exactly one SPIFFE ID (go-spiffe's `x509svid.Verify`).
   */
  trustDomains?: ReadonlyMap<string, PemInput | readonly PemInput[]>
  /**
   * CRLs, PEM. With any, every certificate of a chain below its root needs a current CRL from its issuer,
   * as Node's `crl` option makes OpenSSL require (CRL_CHECK_ALL).
   */
  crl?: PemInput | readonly PemInput[]
  /** CA certificates that may complete a chain but are not trusted by themselves (a server's own intermediates). */
  intermediates?: PemInput | readonly PemInput[]
}

export interface VerifyOptions {
  /** The extended key usage the certificate must allow. */
  purpose: 'client' | 'server'
  /** Default: now. */
  now?: number
  /** CA certificates (DER) the peer presented with its leaf: they may complete its chain, trusted by nothing. */
  intermediates?: readonly Uint8Array[]
}

/** A certificate the verifier knows (a CA of its pool, or the leaf being verified), read once. */
interface Known {
  readonly der: Uint8Array
  readonly fields: CertificateFields
  readonly signedParts: SignedParts
  /** Subject and issuer names as bytes, to compare. */
  readonly subject: string
  readonly issuer: string
  readonly trusted: boolean
  /** The public key of a CA of the pool; a leaf's is never needed but to check a self-signature. */
  readonly publicKey: KeyObject | null
  readonly selfSigned: boolean
}

interface Crl {
  readonly fields: CrlFields
  /** The certificates whose key signed it: only those CAs' certificates are judged by it. */
  readonly signers: ReadonlySet<Known>
}

const MAX_DEPTH = 8
// Signatures OpenSSL refuses at its default security level: MD5 and SHA-1, with RSA, DSA or ECDSA.
const WEAK_SIGNATURES = new Set(['1.2.840.113549.1.1.4', '1.2.840.113549.1.1.5', '1.2.840.10040.4.3', '1.2.840.10045.4.1', '1.3.14.3.2.29'])
// Signature algorithms, for node:crypto's verify: the digest, or null where the key type implies it. Others
// (RSA-PSS) are left to Node's certificate object for certificates, and vouch for nothing in a CRL.
const SIGNATURE_DIGESTS: Record<string, string | null> = {
  '1.2.840.10045.4.3.2': 'sha256',
  '1.2.840.10045.4.3.3': 'sha384',
  '1.2.840.10045.4.3.4': 'sha512',
  '1.2.840.113549.1.1.11': 'sha256',
  '1.2.840.113549.1.1.12': 'sha384',
  '1.2.840.113549.1.1.13': 'sha512',
  '1.3.101.112': null,
  '1.3.101.113': null
}

/**
 * Verifies a certificate that did not arrive through a TLS handshake (one a proxy forwarded) as OpenSSL
 * verifies a handshake's: a chain of CA certificates, each within its validity and allowed to sign, to a
 * trusted self-signed root; revocation by CRL when CRLs are given; the extended key usage of its side.
 * Built once per trust (parsing and CRL signatures checked here), then pure and synchronous per call.
 * Name constraints and certificate policies are not evaluated.
 */
export class ChainVerifier {
  readonly #bySubject = new Map<string, Known[]>()
  readonly #crls = new Map<string, Crl[]>()
  readonly #checkCrls: boolean
  // Which CA certificate of the pool issued which: its signature is checked once, not for every leaf below it.
  readonly #issuers = new WeakMap<Known, Known>()
  readonly #caExpiries = new WeakMap<Known, number>()
  // The trust domains whose bundle holds each root, when the trust is kept by trust domain.
  readonly #rootDomains: Map<Known, Set<string>> | null

  /** The CA certificates (DER) that may complete a chain without being trusted: the `intermediates` option. */
  readonly intermediates: readonly Buffer[]

  /** The SPIFFE trust domains the trust holds bundles for, or `null` when it is not kept by trust domain. */
  readonly trustDomains: ReadonlySet<string> | null
  /**
   * The one trust domain whose bundle holds every root of the trust, or `null`: a chain OpenSSL verified against
   * the whole trust then ends in that trust domain's bundle, and only the peer's trust domain is left to check.
   */
  readonly soleTrustDomain: string | null

  constructor (options: ChainVerifierOptions) {
    if (options.trustDomains !== undefined && options.ca !== undefined) throw new MaterialError('ERR_MTLS_MATERIAL_OPTION_INVALID', 'give ca or trustDomains, not both')
    const byDomain = options.trustDomains === undefined ? null : [...options.trustDomains].map(([name, pems]) => ({ name, anchors: certificates(pems, `trust bundle of ${name}`) }))
    const anchors = byDomain === null ? certificates(options.ca, 'ca') : byDomain.flatMap(bundle => bundle.anchors)
    if (anchors.length === 0) throw new MaterialError('ERR_MTLS_MATERIAL_CA_EMPTY', 'ca: no CA certificate (-----BEGIN CERTIFICATE-----) found')
    // One pool entry per certificate, however many bundles hold it.
    const pool = new Map<string, Known>()
    for (const cert of anchors) {
      const key = cert.raw.toString('latin1')
      if (!pool.has(key)) pool.set(key, pooled(cert, true))
    }
    for (const entry of pool.values()) this.#add(entry)
    this.#rootDomains = null
    this.trustDomains = null
    this.soleTrustDomain = null
    if (byDomain !== null) {
      const rootDomains = new Map<Known, Set<string>>()
      for (const { name, anchors } of byDomain) {
        for (const cert of anchors) {
          const entry = pool.get(cert.raw.toString('latin1')) as Known
          const names = rootDomains.get(entry) ?? new Set<string>()
          names.add(name)
          rootDomains.set(entry, names)
        }
      }
      const domains = byDomain.map(bundle => bundle.name)
      this.#rootDomains = rootDomains
      this.trustDomains = new Set(domains)
      this.soleTrustDomain = domains.find(name => [...rootDomains.values()].every(names => names.has(name))) ?? null
    }
    const intermediates = certificates(options.intermediates, 'intermediates')
    for (const cert of intermediates) this.#add(pooled(cert, false))
    this.intermediates = Object.freeze(intermediates.map(cert => cert.raw))
    const crls = pems(options.crl).flatMap(text => readPemBlocks(text).filter(block => block.label === 'X509 CRL'))
    this.#checkCrls = crls.length > 0
    crls.forEach((block, index) => {
      let fields: CrlFields
      try {
        fields = readCrlFields(block.der)
      } catch (err) {
        throw new MaterialError('ERR_MTLS_MATERIAL_CRL_MALFORMED', `crl: CRL ${index + 1} is malformed (${(err as Error).message})`, { cause: err })
      }
      const issuer = nameKey(block.der, fields.issuer)
      const signers = new Set((this.#bySubject.get(issuer) ?? []).filter(ca => signedBy(fields, ca.publicKey as KeyObject)))
      const list = this.#crls.get(issuer)
      if (list === undefined) this.#crls.set(issuer, [{ fields, signers }])
      else list.push({ fields, signers })
    })
    // The newest CRL of each issuer decides (an older one beside it is superseded, not a reason to stop).
    let freshUntil = Infinity
    for (const list of this.#crls.values()) {
      const newest = list.reduce((a, b) => b.fields.thisUpdate > a.fields.thisUpdate ? b : a)
      freshUntil = Math.min(freshUntil, newest.fields.nextUpdate?.getTime() ?? Infinity)
    }
    this.freshUntil = freshUntil
  }

  /**
   * Throws VerificationError, with OpenSSL's name for the reason as `code` (`CERT_HAS_EXPIRED`,
   * `UNABLE_TO_GET_ISSUER_CERT_LOCALLY`, `CERT_REVOKED`, `INVALID_PURPOSE`, ...), unless the certificate
   * verifies. Reads the DER itself: a forwarded certificate costs no Node certificate object. Returns the
   * time (ms) until which the verdict holds: the earliest expiry of the chain and of the CRLs it was checked against.
   */
  verify (certificate: X509Certificate | Uint8Array, options: VerifyOptions): number {
    const now = options.now ?? Date.now()
    // anyExtendedKeyUsage does not stand for either: OpenSSL refuses a TLS peer whose extended key usage lacks its side.
    const purpose = TLS_EXTENDED_KEY_USAGE[options.purpose]
    if (purpose === undefined) throw new TypeError(`purpose must be 'client' or 'server'; got ${JSON.stringify(options.purpose)}`)
    const leaf = leafOf(certificate instanceof X509Certificate ? certificate.raw : certificate)
    const presented = (options.intermediates ?? []).map(der => presentedOf(der))
    // In OpenSSL's order, so that a certificate with several faults gets the verdict a handshake gives it:
    // build the chain, then check extensions, then revocation, then validity periods.
    const chain = this.#buildChain(leaf, now, presented)
    if (this.#rootDomains !== null) this.#checkTrustDomain(leaf, chain[chain.length - 1] as Known)
    chain.forEach((entry, index) => {
      // Name constraints are OpenSSL's to evaluate; the verifier does not, so it does not pretend to. Checked
      // first: RFC 5280 makes them critical, and they are not a critical extension OpenSSL fails to handle.
      if (entry.fields.nameConstraints) throw fail('ERR_MTLS_NAME_CONSTRAINTS_UNSUPPORTED', `${describe(entry)} has name constraints, which forwarded certificates are not checked against: refused`)
      if (entry.fields.unhandledCritical) throw fail('UNHANDLED_CRITICAL_EXTENSION', `${describe(entry)} has a critical extension OpenSSL does not handle`)
      if (index < chain.length - 1 && WEAK_SIGNATURES.has(entry.signedParts.signatureAlgorithm)) throw fail('CA_MD_TOO_WEAK', `${describe(entry)} is signed with MD5 or SHA-1`)
      checkPurpose(entry, purpose, index > 0)
      if (index === 0) return
      if (!entry.fields.isCa || (entry.fields.keyUsage !== null && (entry.fields.keyUsage & KEY_USAGE.keyCertSign) === 0)) {
        throw fail('INVALID_CA', `${describe(entry)} issued ${describe(chain[index - 1] as Known)} but is not allowed to sign certificates`)
      }
      // pathLenConstraint counts the CA certificates below this one, the leaf not included.
      if (entry.fields.pathLength !== null && index - 1 > entry.fields.pathLength) {
        throw fail('PATH_LENGTH_EXCEEDED', `${describe(entry)} allows ${entry.fields.pathLength} CA certificate(s) below it; the chain has ${index - 1}`)
      }
    })
    let validUntil = Infinity
    if (this.#checkCrls) {
      for (let index = 0; index < chain.length - 1; index++) validUntil = Math.min(validUntil, this.#checkRevocation(chain[index] as Known, chain[index + 1] as Known, now))
    }
    chain.forEach((entry, index) => checkTime(entry, now, index === 0 ? 'the certificate' : index === chain.length - 1 ? 'the trusted root' : 'a CA certificate of its chain'))
    for (const entry of chain) validUntil = Math.min(validUntil, entry.fields.notAfter.getTime())
    return validUntil
  }

  /**
   * The SPIFFE trust domain of a leaf, when this trust holds a bundle for it; throws VerificationError
   * `ERR_MTLS_TRUST_DOMAIN_UNTRUSTED` when the leaf has no SPIFFE ID (or several) or its trust domain has no bundle.
   */
  peerTrustDomain (fields: Pick<CertificateFields, 'uris'>): string {
    const ids = fields.uris.filter(uri => uri.toLowerCase().startsWith('spiffe://'))
    if (ids.length !== 1) throw fail('ERR_MTLS_TRUST_DOMAIN_UNTRUSTED', `the trust is kept by SPIFFE trust domain, and the certificate has ${ids.length} SPIFFE IDs: an X.509-SVID has one`)
    let trustDomain: string
    try {
      trustDomain = parseSpiffeId(ids[0]).trustDomain
    } catch (err) {
      throw fail('ERR_MTLS_TRUST_DOMAIN_UNTRUSTED', `the certificate's SPIFFE ID is invalid (${(err as Error).message})`)
    }
    if (this.trustDomains?.has(trustDomain) !== true) throw fail('ERR_MTLS_TRUST_DOMAIN_UNTRUSTED', `no trust bundle for the trust domain ${trustDomain}`)
    return trustDomain
  }

  #checkTrustDomain (leaf: Known, root: Known): void {
    const trustDomain = this.peerTrustDomain(leaf.fields)
    if (this.#rootDomains?.get(root)?.has(trustDomain) !== true) {
      throw fail('ERR_MTLS_TRUST_DOMAIN_UNTRUSTED', `${describe(leaf)} claims the trust domain ${trustDomain}, but its chain ends at ${describe(root)}, a root of ${[...(this.#rootDomains?.get(root) ?? [])].join(', ')}`)
    }
  }

  /** The leaf, the CAs above it, and the trusted self-signed root that ends it. */
  #buildChain (leaf: Known, now: number, presented: readonly Known[]): Known[] {
    const chain: Known[] = [leaf]
    for (let current = leaf; ;) {
      const issuer = this.#issuerOf(current, chain, now, presented)
      chain.push(issuer)
      if (issuer.trusted && issuer.selfSigned) return chain
      if (chain.length > MAX_DEPTH) throw fail('CERT_CHAIN_TOO_LONG', `no trusted root within ${MAX_DEPTH} certificates`)
      current = issuer
    }
  }

  /**
   * Until when a chain from `certificate` (DER) through the CAs this trust knows lasts: the earliest
   * `notAfter` above it, along the CAs whose keys signed each link (of several with one name and one key, a
   * CA renewed, the latest-lasting). Found without the chain the peer sent, which a resumed session does not
   * show; the certificate's own `notAfter` is not included. `null` when no CA of the trust signed it. Each
   * link's signature is checked once per CA; the certificate's own, on every call (callers keep the answer).
   * Throws VerificationError `ERR_MTLS_CERTIFICATE_MALFORMED` for bytes that are not a certificate.
   */
  issuedChainExpiry (certificate: Uint8Array): number | null {
    return this.#expiryAbove(read(certificate), 0)
  }

  #expiryAbove (entry: Pick<Known, 'der' | 'signedParts' | 'issuer' | 'subject'>, depth: number): number | null {
    if (depth > MAX_DEPTH) return null
    let best: number | null = null
    for (const ca of this.#bySubject.get(entry.issuer) ?? []) {
      if (ca.der === entry.der || !signedBy(entry.signedParts, ca.publicKey as KeyObject, entry.der)) continue
      best = Math.max(best ?? -Infinity, this.#expiryOf(ca, depth))
    }
    return best
  }

  // Until when the chain from a CA of the pool up lasts (a self-signed one: its own notAfter), once per CA.
  #expiryOf (ca: Known, depth: number): number {
    let until = this.#caExpiries.get(ca)
    if (until === undefined) {
      const above = ca.selfSigned ? null : this.#expiryAbove(ca, depth + 1)
      until = Math.min(ca.fields.notAfter.getTime(), above ?? Infinity)
      this.#caExpiries.set(ca, until)
    }
    return until
  }

  /** Until when the trust itself serves: the earliest next update of its CRLs (OpenSSL refuses every peer after it). */
  readonly freshUntil: number

  /** A verifier for the trust of some material: its CAs and CRLs, with its own intermediates to complete chains. Cached per material. */
  static forMaterial (material: Pick<Material, 'ca' | 'crl' | 'cert'> & Partial<Pick<Material, 'trustDomains'>>): ChainVerifier {
    let verifier = byMaterial.get(material)
    if (verifier === undefined) {
      // Keyed by the trust too: a certificate-only rotation keeps the verifier, so nothing verified against it
      // (open connections, forwarded verdicts) is judged again.
      const intermediates = readPemBlocks(material.cert).slice(1).map(block => block.pem)
      const trustDomains = material.trustDomains ?? null
      const byDomain = trustDomains === null ? [] : [...trustDomains].flatMap(([name, pems]) => [[name], pems])
      const trust = trustDigest([material.ca, material.crl, intermediates, [String(trustDomains !== null)], ...byDomain])
      verifier = byTrust.get(trust)
      if (verifier === undefined) {
        verifier = new ChainVerifier({ ...(trustDomains === null ? { ca: material.ca } : { trustDomains }), crl: material.crl, intermediates })
        if (byTrust.size >= 8) byTrust.delete(byTrust.keys().next().value as string)
        byTrust.set(trust, verifier)
      }
      byMaterial.set(material, verifier)
    }
    return verifier
  }

  #add (entry: Known): void {
    const list = this.#bySubject.get(entry.subject)
    if (list === undefined) this.#bySubject.set(entry.subject, [entry])
    else list.push(entry)
  }

  #issuerOf (current: Known, chain: readonly Known[], now: number, presented: readonly Known[]): Known {
    const cachedIssuer = this.#issuers.get(current)
    if (cachedIssuer !== undefined && !chain.includes(cachedIssuer) && withinValidity(cachedIssuer, now)) return cachedIssuer
    const issuer = this.#findIssuer(current, chain, now, presented)
    // Links between certificates of the pool are remembered; those through a peer's own certificates are not.
    if (current !== chain[0] && !presented.includes(current) && !presented.includes(issuer)) this.#issuers.set(current, issuer)
    return issuer
  }

  #findIssuer (current: Known, chain: readonly Known[], now: number, presented: readonly Known[]): Known {
    const candidates = [...(this.#bySubject.get(current.issuer) ?? []), ...presented.filter(entry => entry.subject === current.issuer)].filter(candidate => !chain.includes(candidate))
    // Trusted certificates first, as OpenSSL looks in its trust store before the untrusted ones; of several
    // with one name (a renewed CA), one within its validity first.
    candidates.sort((a, b) => Number(b.trusted) - Number(a.trusted) || Number(withinValidity(b, now)) - Number(withinValidity(a, now)))
    const issuer = candidates.find(candidate => signedBy(current.signedParts, candidate.publicKey as KeyObject, current.der))
    if (issuer !== undefined) return issuer
    if (candidates.length > 0) throw fail('CERT_SIGNATURE_FAILURE', `the signature on ${describe(current)} does not verify with the key of any CA named ${JSON.stringify(formatName(current.der, current.fields.issuer))}`)
    if (current.selfSigned) {
      throw fail(chain.length === 1 ? 'DEPTH_ZERO_SELF_SIGNED_CERT' : 'SELF_SIGNED_CERT_IN_CHAIN', `${describe(current)} is self-signed and not a trusted root`)
    }
    throw fail('UNABLE_TO_GET_ISSUER_CERT_LOCALLY', `no trusted CA issued ${describe(current)} (issuer ${JSON.stringify(formatName(current.der, current.fields.issuer))})`)
  }

  // The newest CRL the issuer signed decides, as OpenSSL picks it; returns when it falls due.
  #checkRevocation (cert: Known, issuer: Known, now: number): number {
    const crl = (this.#crls.get(issuer.subject) ?? [])
      .filter(candidate => candidate.signers.has(issuer))
      .reduce<Crl | null>((newest, candidate) => newest === null || candidate.fields.thisUpdate > newest.fields.thisUpdate ? candidate : newest, null)
    if (crl === null) throw fail('UNABLE_TO_GET_CRL', `no CRL of ${describe(issuer)} is loaded, so ${describe(cert)} cannot be checked for revocation`)
    if (crl.fields.thisUpdate.getTime() > now) throw fail('CRL_NOT_YET_VALID', `the CRL of ${describe(issuer)} is not valid until ${crl.fields.thisUpdate.toISOString()}`)
    if (crl.fields.nextUpdate !== null && crl.fields.nextUpdate.getTime() < now) {
      throw fail('CRL_HAS_EXPIRED', `the CRL of ${describe(issuer)} was due for renewal at ${crl.fields.nextUpdate.toISOString()}`)
    }
    if (crl.fields.revoked.has(cert.fields.serialNumber)) throw fail('CERT_REVOKED', `${describe(cert)} (serial ${cert.fields.serialNumber}) is revoked`)
    return crl.fields.nextUpdate?.getTime() ?? Infinity
  }
}

const byMaterial = new WeakMap<object, ChainVerifier>()

// Each list's length and each element's length go into the digest, so no two trusts share one.
function trustDigest (lists: ReadonlyArray<readonly string[]>): string {
  const hash = createHash('sha256')
  for (const list of lists) {
    hash.update(`${list.length}:`)
    for (const item of list) hash.update(`${Buffer.byteLength(item)}:`).update(item)
  }
  return hash.digest('hex')
}
const byTrust = new Map<string, ChainVerifier>()

function pooled (cert: X509Certificate, trusted: boolean): Known {
  const entry = read(cert.raw)
  return { ...entry, trusted, publicKey: cert.publicKey, selfSigned: entry.subject === entry.issuer && signedBy(entry.signedParts, cert.publicKey, entry.der) }
}

// The leaf is read from the DER as given: Node's `raw` would drop bytes glued after the certificate.
function leafOf (der: Uint8Array): Known {
  const entry = read(der)
  // Only a self-issued leaf needs its own key, to tell a self-signed certificate from an unknown issuer.
  const selfSigned = entry.subject === entry.issuer && signedBy(entry.signedParts, parse(der).publicKey, der)
  return { ...entry, trusted: false, publicKey: null, selfSigned }
}

function read (der: Uint8Array): Pick<Known, 'der' | 'fields' | 'signedParts' | 'subject' | 'issuer'> {
  let fields: CertificateFields
  try {
    fields = readCertificateFields(der)
  } catch (err) {
    throw fail('ERR_MTLS_CERTIFICATE_MALFORMED', (err as Error).message)
  }
  let signedParts: SignedParts
  try {
    signedParts = readSignedParts(der)
  } catch (err) {
    throw fail('ERR_MTLS_CERTIFICATE_MALFORMED', (err as Error).message)
  }
  return { der, fields, signedParts, subject: nameKey(der, fields.subject), issuer: nameKey(der, fields.issuer) }
}

// A certificate the peer presented: a candidate issuer like an intermediate of the pool, trusted by nothing.
function presentedOf (der: Uint8Array): Known {
  const cert = parse(der)
  const entry = read(der)
  return { ...entry, trusted: false, publicKey: cert.publicKey, selfSigned: entry.subject === entry.issuer && signedBy(entry.signedParts, cert.publicKey, der) }
}

function parse (der: Uint8Array): X509Certificate {
  try {
    return new X509Certificate(der)
  } catch (err) {
    throw fail('ERR_MTLS_CERTIFICATE_MALFORMED', `not a DER X.509 certificate (${(err as Error).message})`)
  }
}

function withinValidity (entry: Known, now: number): boolean {
  return entry.fields.notBefore.getTime() <= now && now <= entry.fields.notAfter.getTime()
}

function checkTime (entry: Known, now: number, what: string): void {
  if (entry.fields.notBefore.getTime() > now) throw fail('CERT_NOT_YET_VALID', `${what} (${describe(entry)}) is not valid until ${entry.fields.notBefore.toISOString()}`)
  if (entry.fields.notAfter.getTime() < now) throw fail('CERT_HAS_EXPIRED', `${what} (${describe(entry)}) expired at ${entry.fields.notAfter.toISOString()}`)
}

// OpenSSL's TLS purposes: an extended key usage, when present, must allow the side (for CAs too), and a
// leaf's key usage, when present, must allow signing.
function checkPurpose (entry: Known, purpose: string, ca: boolean): void {
  const usages = entry.fields.extendedKeyUsages
  if (usages !== null && !usages.includes(purpose)) {
    throw fail('INVALID_PURPOSE', `${describe(entry)}: its extended key usage does not allow ${purpose === TLS_EXTENDED_KEY_USAGE.client ? 'clientAuth' : 'serverAuth'}`)
  }
  const usage = entry.fields.keyUsage
  if (!ca && usage !== null && (usage & (KEY_USAGE.digitalSignature | KEY_USAGE.keyAgreement)) === 0) {
    throw fail('INVALID_PURPOSE', `${describe(entry)}: its key usage allows neither digitalSignature nor keyAgreement`)
  }
}

// Whether `parts` (of a certificate or CRL) carry a valid signature by `publicKey`. A certificate in an
// algorithm without a digest entry is checked by Node's certificate object; a CRL in one vouches for nothing.
function signedBy (parts: SignedParts, publicKey: KeyObject, certificate?: Uint8Array): boolean {
  const digest = SIGNATURE_DIGESTS[parts.signatureAlgorithm]
  try {
    if (digest !== undefined) return verifySignature(digest, parts.signed, publicKey, parts.signature)
    return certificate !== undefined && new X509Certificate(certificate).verify(publicKey)
  } catch {
    return false
  }
}

function certificates (input: PemInput | readonly PemInput[] | undefined, name: string): X509Certificate[] {
  return pems(input).flatMap(text => readPemBlocks(text).filter(block => block.label === 'CERTIFICATE')).map((block, index) => {
    try {
      return new X509Certificate(block.der)
    } catch (err) {
      throw new MaterialError('ERR_MTLS_MATERIAL_CERT_MALFORMED', `${name}: certificate ${index + 1} is malformed (${(err as Error).message})`, { cause: err })
    }
  })
}

function pems (input: PemInput | readonly PemInput[] | undefined): string[] {
  if (input === undefined) return []
  const list = (Array.isArray(input) ? input : [input]) as PemInput[]
  return list.map((item, index) => {
    if (typeof item !== 'string' && !Buffer.isBuffer(item)) throw new MaterialError('ERR_MTLS_MATERIAL_OPTION_INVALID', `PEM input ${index + 1} must be a string or a Buffer`)
    return item.toString()
  })
}

// Names are compared by their DER bytes, as certificates from one CA encode them identically.
function nameKey (der: Uint8Array, range: NameRange): string {
  return Buffer.from(der.buffer, der.byteOffset + range.start, range.end - range.start).toString('latin1')
}

function describe (entry: Known): string {
  const cn = entry.fields.commonName
  return cn === null ? `the certificate with serial ${entry.fields.serialNumber}` : `"${cn}"`
}

function fail (code: VerificationErrorCode, message: string): VerificationError {
  return new VerificationError(code, message)
}
