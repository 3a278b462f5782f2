import { X509Certificate, createPublicKey, type KeyObject } from 'node:crypto'
import { chooseCrls, crlCurrent, crlSignedWith, CRL_SCORE, type LoadedCrl } from './crl-choice.js'
import { KEY_USAGE, TLS_EXTENDED_KEY_USAGE, canonicalName, checkStrictDer, formatName, readCertificateFields, readCrlFields, readSignedParts, type CertificateFields, type CrlFields, type SignedParts } from './der.js'
import { MaterialError, VerificationError, type VerificationErrorCode } from './errors.js'
import { akidMismatch, keyTypeOf, type ChainEntry } from './issuer-match.js'
import { readPemBlocks } from './pem.js'
import { keyProblem, signatureAlgorithm, verifiesWith, type AllowedAlgorithm, type RefusedAlgorithm } from './signature-allowlist.js'
import { peerTrustDomain } from './peer-trust-domain.js'

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
  /** CA certificates (DER) the peer presented with its leaf: they may complete its chain and sign its CRLs, trusted by nothing. */
  intermediates?: readonly Uint8Array[]
}

/** A certificate the verifier knows (a CA of its pool, or the leaf being verified), read once. */
interface Known extends ChainEntry {
  readonly signedParts: SignedParts
  /** The signature algorithm, if the allowlist has it. */
  readonly algorithm: AllowedAlgorithm | RefusedAlgorithm
  readonly trusted: boolean
  /** The public key of a CA of the pool or of a certificate the peer presented; the leaf's, when it is self-issued. */
  readonly publicKey: KeyObject | null
  readonly selfSigned: boolean
  /** The encoding is strict DER (`checkStrictDer`): every certificate of an accepted chain must be. */
  readonly strictDer: boolean
}

interface Crl extends LoadedCrl {
  /** Whether the CRL's signature verifies with a key (by its SubjectPublicKeyInfo): checked once per key. */
  readonly signedBy: Map<string, boolean>
}

const MAX_DEPTH = 8
// How many chains a certificate may have (several CAs fit one link: OpenSSL may take any of them, so each must do).
const MAX_CHAINS = 8
// How many certificates a peer may present with its leaf.
const MAX_PRESENTED = 16
/**
 * Verifies a certificate that did not arrive through a TLS handshake (one a proxy forwarded) as OpenSSL verifies
 * a handshake's, and refuses whatever it does not evaluate as OpenSSL would: an allowlist that fails closed. A chain
 * of CA certificates, each within its validity and allowed to sign, to a trusted self-signed root; the checks of
 * `openssl verify -x509_strict` (key identifiers, critical basic constraints, key usage of CAs, names, algorithm
 * identifiers); signatures and keys of the allowlist (signature-allowlist.ts) only; strict DER; revocation by the
 * CRL OpenSSL would choose for each certificate when CRLs are given (crl-choice.ts); the extended key usage of its
 * side. Name constraints, policies, RFC 3779 resources, proxy certificates and Netscape certificate types are
 * refused, not evaluated. Built once per trust, then pure and synchronous per call.
 */
export class ChainVerifier {
  readonly #pool = new Set<Known>()
  // The same CAs, by canonical subject name: how OpenSSL finds a certificate's issuer.
  readonly #byName = new Map<string, Known[]>()
  // Every CRL, by canonical issuer name.
  readonly #crls = new Map<string, Crl[]>()
  readonly #checkCrls: boolean
  // Signatures checked between two CAs of the pool, once: the issuer's verdict per certificate.
  readonly #links = new WeakMap<Known, Map<Known, boolean>>()
  // The trust domains whose bundle holds each root, when the trust is kept by trust domain.
  readonly #rootDomains: Map<Known, Set<string>> | null

  /** The SPIFFE trust domains the trust holds bundles for, or `null` when it is not kept by trust domain. */
  readonly trustDomains: ReadonlySet<string> | null

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
    }
    const intermediates = certificates(options.intermediates, 'intermediates')
    for (const cert of intermediates) this.#add(pooled(cert, false))
    const crls = pems(options.crl).flatMap(text => readPemBlocks(text).filter(block => block.label === 'X509 CRL'))
    this.#checkCrls = crls.length > 0
    crls.forEach((block, index) => {
      let fields: CrlFields
      try {
        fields = readCrlFields(block.der)
      } catch (err) {
        throw new MaterialError('ERR_MTLS_MATERIAL_CRL_MALFORMED', `crl: CRL ${index + 1} is malformed (${(err as Error).message})`, { cause: err })
      }
      const crl: Crl = { der: block.der, fields, issuerName: canonicalName(block.der, fields.issuer), signedBy: new Map() }
      const list = this.#crls.get(crl.issuerName)
      if (list === undefined) this.#crls.set(crl.issuerName, [crl])
      else list.push(crl)
    })
    // The newest CRL of each issuer says until when the trust serves.
    let freshUntil = Infinity
    for (const list of this.#crls.values()) {
      const newest = list.reduce((a, b) => b.fields.thisUpdate > a.fields.thisUpdate ? b : a)
      freshUntil = Math.min(freshUntil, newest.fields.nextUpdate?.getTime() ?? Infinity)
    }
    this.freshUntil = freshUntil
  }

  /**
   * Throws VerificationError, with OpenSSL's name for the reason as `code` (`CERT_HAS_EXPIRED`,
   * `UNABLE_TO_GET_ISSUER_CERT_LOCALLY`, `CERT_REVOKED`, `INVALID_PURPOSE`, ...) or an `ERR_MTLS_*` code for what the
   * verifier refuses and OpenSSL might not, unless the certificate verifies. Reads the DER itself: a forwarded
   * certificate costs no Node certificate object. Returns the time (ms) until which the verdict holds: the earliest
   * expiry of the chain and of the CRLs it was checked against.
   */
  verify (certificate: X509Certificate | Uint8Array, options: VerifyOptions): number {
    const now = options.now ?? Date.now()
    // anyExtendedKeyUsage does not stand for either: OpenSSL refuses a TLS peer whose extended key usage lacks its side.
    const purpose = TLS_EXTENDED_KEY_USAGE[options.purpose]
    if (purpose === undefined) throw new TypeError(`purpose must be 'client' or 'server'; got ${JSON.stringify(options.purpose)}`)
    const leaf = leafOf(certificate instanceof X509Certificate ? certificate.raw : certificate)
    const given = options.intermediates ?? []
    if (given.length > MAX_PRESENTED) throw fail('CERT_CHAIN_TOO_LONG', `the peer presented ${given.length} certificates with its leaf (${MAX_PRESENTED} at most)`)
    const presented = given.map(der => presentedOf(der))
    // The leaf's key first, as OpenSSL checks it before it builds a chain.
    checkKey(leaf, 0)
    // Every chain OpenSSL might build must verify: each is checked in OpenSSL's order, so that a certificate with
    // several faults gets the verdict a handshake gives it (chain, extensions, key and digest strength, revocation,
    // signatures and validity periods).
    let validUntil = Infinity
    for (const chain of this.#chains(leaf, now, presented)) validUntil = Math.min(validUntil, this.#verifyChain(chain, purpose, now))
    return validUntil
  }

  #verifyChain (chain: readonly Known[], purpose: string, now: number): number {
    const root = chain[chain.length - 1] as Known
    if (this.#rootDomains !== null) this.#checkTrustDomain(chain[0] as Known, root)
    for (const entry of chain) checkEvaluated(entry)
    chain.forEach((entry, index) => checkExtensions(entry, index, chain, purpose))
    chain.forEach((entry, index) => {
      if (index > 0) checkKey(entry, index)
      // The trust anchor's own signature vouches for nothing: OpenSSL does not look at it.
      if (entry !== root) checkSignatureAlgorithm(entry)
    })
    let validUntil = Infinity
    if (this.#checkCrls) {
      for (let index = 0; index < chain.length; index++) validUntil = Math.min(validUntil, this.#checkRevocation(chain, index, now))
    }
    for (let index = 0; index < chain.length - 1; index++) {
      if (!this.#signed(chain[index] as Known, chain[index + 1] as Known)) {
        throw fail('CERT_SIGNATURE_FAILURE', `the signature on ${describe(chain[index] as Known)} does not verify with the key of ${describe(chain[index + 1] as Known)}`)
      }
    }
    chain.forEach((entry, index) => checkTime(entry, now, index === 0 ? 'the certificate' : entry === root ? 'the trusted root' : 'a CA certificate of its chain'))
    for (const entry of chain) validUntil = Math.min(validUntil, entry.fields.notAfter.getTime())
    return validUntil
  }

  /**
   * The SPIFFE trust domain of a leaf, when this trust holds a bundle for it; throws VerificationError
   * `ERR_MTLS_TRUST_DOMAIN_UNTRUSTED` when the leaf has no SPIFFE ID (or several) or its trust domain has no bundle.
   */
  peerTrustDomain (fields: Pick<CertificateFields, 'uris'>): string {
    const { trustDomain, refusal } = peerTrustDomain(fields, this.trustDomains ?? new Set<string>())
    if (refusal !== null) throw fail(refusal.code, refusal.message)
    return trustDomain as string
  }

  #checkTrustDomain (leaf: Known, root: Known): void {
    const trustDomain = this.peerTrustDomain(leaf.fields)
    if (this.#rootDomains?.get(root)?.has(trustDomain) !== true) {
      throw fail('ERR_MTLS_TRUST_DOMAIN_UNTRUSTED', `${describe(leaf)} claims the trust domain ${trustDomain}, but its chain ends at ${describe(root)}, a root of ${[...(this.#rootDomains?.get(root) ?? [])].join(', ')}`)
    }
  }

  /** The chains from the leaf to a trusted self-signed root that OpenSSL might build: at most MAX_CHAINS. */
  #chains (leaf: Known, now: number, presented: readonly Known[]): Known[][] {
    const chains: Known[][] = []
    const extend = (chain: Known[]): void => {
      const current = chain[chain.length - 1] as Known
      if (current.trusted && current.selfSigned) {
        if (chains.push(chain) > MAX_CHAINS) throw fail('CERT_CHAIN_TOO_LONG', `more than ${MAX_CHAINS} chains from ${describe(leaf)} to a trusted root`)
        return
      }
      if (chain.length > MAX_DEPTH) throw fail('CERT_CHAIN_TOO_LONG', `no trusted root within ${MAX_DEPTH} certificates`)
      for (const issuer of this.#issuers(current, chain, now, presented)) extend([...chain, issuer])
    }
    extend([leaf])
    return chains
  }

  /**
   * The certificates OpenSSL may take as the issuer of `current` (x509_vfy.c build_chain): those whose name, key
   * identifiers and key type fit it (check_issued); trusted ones if any fit, else the peer's and the pool's
   * intermediates; of those, the ones within their validity, else the latest-lasting.
   */
  #issuers (current: Known, chain: readonly Known[], now: number, presented: readonly Known[]): Known[] {
    const named = [...(this.#byName.get(current.issuerName) ?? []), ...presented.filter(entry => entry.subjectName === current.issuerName)]
      .filter(candidate => !chain.includes(candidate))
    const fitting = named.filter(candidate => akidMismatch(current.fields.authorityKeyIdentifier, current.der, candidate) === null &&
      ('refused' in current.algorithm || current.algorithm.keyType === keyTypeOf(candidate.fields)))
    if (fitting.length === 0) throw this.#noIssuer(current, chain, named)
    const trusted = fitting.filter(candidate => candidate.trusted)
    let candidates = trusted.length > 0 ? trusted : fitting
    const valid = candidates.filter(candidate => withinValidity(candidate, now))
    if (valid.length > 0) candidates = valid
    else {
      const latest = Math.max(...candidates.map(candidate => candidate.fields.notAfter.getTime()))
      candidates = candidates.filter(candidate => candidate.fields.notAfter.getTime() === latest)
    }
    // The same certificate from the pool and from the peer is one candidate.
    return candidates.filter((candidate, index) => candidates.findIndex(other => sameBytes(other.der, candidate.der)) === index)
  }

  #noIssuer (current: Known, chain: readonly Known[], named: readonly Known[]): VerificationError {
    const issuerName = JSON.stringify(formatName(current.der, current.fields.issuer))
    const mismatch = named.map(candidate => akidMismatch(current.fields.authorityKeyIdentifier, current.der, candidate)).find(code => code !== null)
    if (mismatch !== undefined) return fail(mismatch, `the authority key identifier of ${describe(current)} fits no CA named ${issuerName}`)
    if (named.length > 0) return fail('CERT_SIGNATURE_FAILURE', `${describe(current)} is signed with ${(current.algorithm as AllowedAlgorithm).name}, which no key of a CA named ${issuerName} makes`)
    if (current.selfSigned) {
      return fail(chain.length === 1 ? 'DEPTH_ZERO_SELF_SIGNED_CERT' : 'SELF_SIGNED_CERT_IN_CHAIN', `${describe(current)} is self-signed and not a trusted root`)
    }
    return fail('UNABLE_TO_GET_ISSUER_CERT_LOCALLY', `no trusted CA issued ${describe(current)} (issuer ${issuerName})`)
  }

  // Whether `issuer`'s key made the signature on `entry`, in an algorithm of the allowlist; once per pair of the pool.
  #signed (entry: Known, issuer: Known): boolean {
    const links = this.#links.get(entry)
    const known = links?.get(issuer)
    if (known !== undefined) return known
    const verdict = !('refused' in entry.algorithm) && issuer.publicKey !== null && verifiesWith(entry.signedParts, entry.algorithm, issuer.publicKey)
    if (this.#pooled(entry) && this.#pooled(issuer)) {
      if (links === undefined) this.#links.set(entry, new Map([[issuer, verdict]]))
      else links.set(issuer, verdict)
    }
    return verdict
  }

  #pooled (entry: Known): boolean {
    return this.#pool.has(entry)
  }

  /** Until when the trust itself serves: the earliest next update of its CRLs (OpenSSL refuses every peer after it). */
  readonly freshUntil: number

  #add (entry: Known): void {
    this.#pool.add(entry)
    const named = this.#byName.get(entry.subjectName)
    if (named === undefined) this.#byName.set(entry.subjectName, [entry])
    else named.push(entry)
  }

  /**
   * Revocation of `chain[index]` (the root included, as CRL_CHECK_ALL checks it): the CRL OpenSSL would choose must
   * be in scope, current, signed by a CA allowed to sign CRLs, free of critical extensions OpenSSL does not handle,
   * and must not list it; and no CRL of its issuer may list it. Returns when the CRL falls due.
   */
  #checkRevocation (chain: readonly Known[], index: number, now: number): number {
    const cert = chain[index] as Known
    const crls = this.#crls.get(cert.issuerName) ?? []
    let choices
    try {
      // OpenSSL 3.0 takes a delta CRL for a complete one, later versions ignore it: a CRL either would choose is checked, and each must find one.
      const complete = chooseCrls(crls, chain, index, now, false)
      const withDeltas = chooseCrls(crls, chain, index, now, true)
      choices = complete.length === 0 || withDeltas.length === 0 ? [] : [...complete, ...withDeltas.filter(choice => !complete.some(other => other.crl === choice.crl))]
    } catch (err) {
      // UndecidableScope: a name OpenSSL would compare and the verifier does not.
      throw fail('ERR_MTLS_EXTENSION_UNSUPPORTED', `the CRLs for ${describe(cert)} cannot be chosen as OpenSSL would: ${(err as Error).message}`)
    }
    if (choices.length === 0) throw fail('UNABLE_TO_GET_CRL', `no CRL of ${describe(chain[Math.min(index + 1, chain.length - 1)] as Known)} is loaded, so ${describe(cert)} cannot be checked for revocation`)
    let due = Infinity
    for (const { crl, score, issuer } of choices) {
      const usage = issuer.fields.keyUsage
      if (usage !== null && (usage & KEY_USAGE.cRLSign) === 0) throw fail('KEYUSAGE_NO_CRL_SIGN', `a CRL for ${describe(cert)} is issued by ${describe(issuer)}, whose key usage does not allow signing CRLs`)
      // A CRL whose scope leaves the certificate out: Node reports UNABLE_TO_GET_CRL (openssl verify, DIFFERENT_CRL_SCOPE).
      if ((score & CRL_SCORE.scope) === 0) throw fail('UNABLE_TO_GET_CRL', `no CRL of ${describe(issuer)} covers ${describe(cert)} (its CRLs are scoped to other certificates)`)
      if (!crlCurrent(crl.fields, now)) {
        if (crl.fields.thisUpdate.getTime() > now) throw fail('CRL_NOT_YET_VALID', `the CRL of ${describe(issuer)} is not valid until ${crl.fields.thisUpdate.toISOString()}`)
        throw fail('CRL_HAS_EXPIRED', `the CRL of ${describe(issuer)} was due for renewal at ${(crl.fields.nextUpdate as Date).toISOString()}`)
      }
      if (!crlSigned(crl, issuer)) throw fail('CRL_SIGNATURE_FAILURE', `the CRL of ${describe(issuer)} for ${describe(cert)} is not validly signed by its key in an allowed algorithm`)
      if (crl.fields.unhandledCritical) throw fail('UNHANDLED_CRITICAL_CRL_EXTENSION', `the CRL of ${describe(issuer)} has a critical extension OpenSSL does not handle`)
      due = Math.min(due, crl.fields.nextUpdate?.getTime() ?? Infinity)
    }
    // A listing in any CRL of the issuer's name counts, chosen or not: stricter than OpenSSL, never more lenient.
    if (crls.some(crl => crl.fields.revoked.has(cert.fields.serialNumber))) throw fail('CERT_REVOKED', `${describe(cert)} (serial ${cert.fields.serialNumber}) is revoked`)
    return due
  }
}

function pooled (cert: X509Certificate, trusted: boolean): Known {
  const entry = read(cert.raw)
  // A root's own signature is OpenSSL's to judge (it does not check it by default): any algorithm tells self-signed.
  return { ...entry, trusted, publicKey: cert.publicKey, selfSigned: entry.subjectName === entry.issuerName && cert.verify(cert.publicKey), strictDer: strict(cert.raw) }
}

// The leaf is read from the DER as given: Node's `raw` would drop bytes glued after the certificate.
function leafOf (der: Uint8Array): Known {
  const entry = checked(der)
  // Only a self-issued leaf needs its own key, to tell a self-signed certificate from an unknown issuer.
  const publicKey = entry.subjectName === entry.issuerName ? keyOf(der, entry.fields) : null
  return { ...entry, trusted: false, publicKey, selfSigned: publicKey !== null && selfSigned(entry, publicKey) }
}

// A certificate the peer presented: a candidate issuer like an intermediate of the pool, trusted by nothing.
function presentedOf (der: Uint8Array): Known {
  const entry = checked(der)
  const publicKey = keyOf(der, entry.fields)
  return { ...entry, trusted: false, publicKey, selfSigned: selfSigned(entry, publicKey) }
}

// A certificate that came with the request: strict DER, or nothing.
function checked (der: Uint8Array): Omit<Known, 'trusted' | 'publicKey' | 'selfSigned'> {
  const entry = read(der)
  try {
    checkStrictDer(der)
  } catch (err) {
    throw fail('ERR_MTLS_CERTIFICATE_MALFORMED', `not a strict DER certificate (${(err as Error).message})`)
  }
  return { ...entry, strictDer: true }
}

function strict (der: Uint8Array): boolean {
  try {
    checkStrictDer(der)
    return true
  } catch {
    return false
  }
}

function keyOf (der: Uint8Array, fields: CertificateFields): KeyObject {
  try {
    return createPublicKey({ key: Buffer.from(der.subarray(fields.publicKey.start, fields.publicKey.end)), format: 'der', type: 'spki' })
  } catch (err) {
    throw fail('ERR_MTLS_CERTIFICATE_MALFORMED', `a public key OpenSSL cannot read (${(err as Error).message})`)
  }
}

function selfSigned (entry: Omit<Known, 'trusted' | 'publicKey' | 'selfSigned'>, publicKey: KeyObject): boolean {
  return entry.subjectName === entry.issuerName && !('refused' in entry.algorithm) && verifiesWith(entry.signedParts, entry.algorithm, publicKey)
}

function read (der: Uint8Array): Omit<Known, 'trusted' | 'publicKey' | 'selfSigned' | 'strictDer'> {
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
  return {
    der,
    fields,
    signedParts,
    subjectName: canonicalName(der, fields.subject),
    issuerName: canonicalName(der, fields.issuer),
    algorithm: signatureAlgorithm(signedParts.algorithmIdentifier)
  }
}

// Whether a CRL is validly signed by `issuer`'s key in an allowed algorithm, with the same algorithm inside and out.
function crlSigned (crl: Crl, issuer: Known): boolean {
  const key = Buffer.from(issuer.der.buffer, issuer.der.byteOffset + issuer.fields.publicKey.start, issuer.fields.publicKey.end - issuer.fields.publicKey.start).toString('latin1')
  let verdict = crl.signedBy.get(key)
  if (verdict === undefined) {
    verdict = issuer.publicKey !== null && crlSignedWith(crl, issuer.publicKey)
    // Bounded: the peer's own intermediates come and go.
    if (crl.signedBy.size >= 64) crl.signedBy.delete(crl.signedBy.keys().next().value as string)
    crl.signedBy.set(key, verdict)
  }
  return verdict
}

function withinValidity (entry: Known, now: number): boolean {
  return entry.fields.notBefore.getTime() <= now && now <= entry.fields.notAfter.getTime()
}

function checkTime (entry: Known, now: number, what: string): void {
  if (entry.fields.notBefore.getTime() > now) throw fail('CERT_NOT_YET_VALID', `${what} (${describe(entry)}) is not valid until ${entry.fields.notBefore.toISOString()}`)
  if (entry.fields.notAfter.getTime() < now) throw fail('CERT_HAS_EXPIRED', `${what} (${describe(entry)}) expired at ${entry.fields.notAfter.toISOString()}`)
}

// What the verifier does not evaluate, and so refuses wherever it appears in a chain: checked for every certificate
// before anything else.
function checkEvaluated (entry: Known): void {
  const { fields } = entry
  if (!entry.strictDer) throw fail('ERR_MTLS_CERTIFICATE_MALFORMED', `${describe(entry)} is not encoded in strict DER`)
  // Name constraints are OpenSSL's to evaluate; the verifier does not, so it does not pretend to. Checked
  // first: RFC 5280 makes them critical, and they are not a critical extension OpenSSL fails to handle.
  if (fields.nameConstraints) throw fail('ERR_MTLS_NAME_CONSTRAINTS_UNSUPPORTED', `${describe(entry)} has name constraints, which forwarded certificates are not checked against: refused`)
  if (fields.unhandledCritical) throw fail('UNHANDLED_CRITICAL_EXTENSION', `${describe(entry)} has a critical extension OpenSSL does not handle`)
  if (fields.evaluatedElsewhere.includes('proxyCertInfo')) throw fail('PROXY_CERTIFICATES_NOT_ALLOWED', `${describe(entry)} is a proxy certificate`)
  if (fields.evaluatedElsewhere.length > 0) throw fail('ERR_MTLS_EXTENSION_UNSUPPORTED', `${describe(entry)} has ${fields.evaluatedElsewhere.join(', ')}, which OpenSSL evaluates and forwarded certificates are not checked against: refused`)
}

// The extensions of `chain[index]`, as OpenSSL's check_extensions checks them with X509_V_FLAG_X509_STRICT.
function checkExtensions (entry: Known, index: number, chain: readonly Known[], purpose: string): void {
  const { fields } = entry
  const ca = index > 0
  if (ca && (!fields.isCa || (fields.keyUsage !== null && (fields.keyUsage & KEY_USAGE.keyCertSign) === 0))) {
    throw fail('INVALID_CA', `${describe(entry)} issued ${describe(chain[index - 1] as Known)} but is not allowed to sign certificates`)
  }
  if (fields.isCa && !fields.basicConstraintsCritical) throw fail('CA_BCONS_NOT_CRITICAL', `${describe(entry)} is a CA whose basic constraints are not critical`)
  if (fields.pathLength !== null && !fields.isCa) throw fail('PATHLEN_INVALID_FOR_NON_CA', `${describe(entry)} has a path length but is not a CA`)
  if (fields.pathLength !== null && (fields.keyUsage === null || (fields.keyUsage & KEY_USAGE.keyCertSign) === 0)) throw fail('PATHLEN_WITHOUT_KU_KEY_CERT_SIGN', `${describe(entry)} has a path length without keyCertSign`)
  if (fields.isCa && fields.keyUsage === null) throw fail('CA_CERT_MISSING_KEY_USAGE', `${describe(entry)} is a CA without key usage`)
  if (!fields.isCa && fields.keyUsage !== null && (fields.keyUsage & KEY_USAGE.keyCertSign) !== 0) throw fail('KU_KEY_CERT_SIGN_INVALID_FOR_NON_CA', `${describe(entry)} has keyCertSign but is not a CA`)
  if (fields.issuer.start === fields.issuer.end) throw fail('ISSUER_NAME_EMPTY', `${describe(entry)} has an empty issuer name`)
  const subjectEmpty = fields.subject.start === fields.subject.end
  if (subjectEmpty && (fields.isCa || (fields.keyUsage !== null && (fields.keyUsage & KEY_USAGE.cRLSign) !== 0) || !fields.subjectAltName)) throw fail('SUBJECT_NAME_EMPTY', `${describe(entry)} has an empty subject name`)
  if (subjectEmpty && !fields.subjectAltNameCritical) throw fail('EMPTY_SUBJECT_SAN_NOT_CRITICAL', `${describe(entry)} has an empty subject and a subject alternative name that is not critical`)
  if (fields.subjectAltName && fields.sanCount === 0) throw fail('EMPTY_SUBJECT_ALT_NAME', `${describe(entry)} has an empty subject alternative name`)
  if (!sameBytes(entry.der.subarray(fields.innerAlgorithm.start, fields.innerAlgorithm.end), entry.signedParts.algorithmIdentifier)) {
    throw fail('SIGNATURE_ALGORITHM_INCONSISTENCY', `${describe(entry)} names one signature algorithm inside its signed part and another outside`)
  }
  if (fields.version !== 2) throw fail('EXTENSIONS_REQUIRE_VERSION_3', `${describe(entry)} is not a version 3 certificate`)
  // Below the root, every certificate but a self-signed one names its issuer's key.
  if (entry !== chain[chain.length - 1] && !entry.selfSigned && fields.authorityKeyIdentifier === null) throw fail('MISSING_AUTHORITY_KEY_IDENTIFIER', `${describe(entry)} has no authority key identifier`)
  if (fields.isCa && fields.subjectKeyIdentifier === null) throw fail('MISSING_SUBJECT_KEY_IDENTIFIER', `${describe(entry)} is a CA without a subject key identifier`)
  checkPurpose(entry, purpose, ca)
  // pathLenConstraint counts the CA certificates below this one, the leaf not included.
  if (ca && fields.pathLength !== null && index - 1 > fields.pathLength) {
    throw fail('PATH_LENGTH_EXCEEDED', `${describe(entry)} allows ${fields.pathLength} CA certificate(s) below it; the chain has ${index - 1}`)
  }
}

// The key of `chain[index]`, as OpenSSL's security level checks it (EE_KEY_TOO_SMALL, CA_KEY_TOO_SMALL,
// EC_KEY_EXPLICIT_PARAMS), and the allowlist.
function checkKey (entry: Known, index: number): void {
  const problem = keyProblem(entry.der, entry.fields)
  if (problem === null) return
  const message = `${describe(entry)} has ${problem.description}`
  if (problem.problem === 'too-small') throw fail(index === 0 ? 'EE_KEY_TOO_SMALL' : 'CA_KEY_TOO_SMALL', message)
  throw fail(problem.problem === 'explicit-parameters' ? 'EC_KEY_EXPLICIT_PARAMS' : 'ERR_MTLS_KEY_UNSUPPORTED', message)
}

// The algorithm of a signature below the trust anchor: MD5 and SHA-1 as OpenSSL refuses them (CA_MD_TOO_WEAK),
// anything else off the allowlist with a code of the verifier's own.
function checkSignatureAlgorithm (entry: Known): void {
  const algorithm = entry.algorithm
  if ('refused' in algorithm) {
    if (algorithm.refused === 'weak') throw fail('CA_MD_TOO_WEAK', `${describe(entry)} is signed with ${algorithm.name}: MD5 and SHA-1 are refused`)
    throw fail('ERR_MTLS_SIGNATURE_ALGORITHM_UNSUPPORTED', `${describe(entry)} is signed with ${algorithm.name}, which is not on the allowlist`)
  }
  if (entry.signedParts.unusedBits !== 0) throw fail('ERR_MTLS_CERTIFICATE_MALFORMED', `the signature BIT STRING of ${describe(entry)} has unused bits`)
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
function sameBytes (a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0
}

function describe (entry: Known): string {
  const cn = entry.fields.commonName
  return cn === null ? `the certificate with serial ${entry.fields.serialNumber}` : `"${cn}"`
}

function fail (code: VerificationErrorCode, message: string): VerificationError {
  return new VerificationError(code, message)
}
