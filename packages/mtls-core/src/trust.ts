import { X509Certificate, createHash, type KeyObject } from 'node:crypto'
import { UndecidableScope, crlCurrent, crlSignedWith, crlUsable, inScope, type LoadedCrl } from './crl-choice.js'
import { KEY_USAGE, canonicalName, readCertificateFields, readCrlFields, type CertificateFields, type CrlFields } from './der.js'
import { MaterialError, type VerificationErrorCode } from './errors.js'
import type { ChainEntry } from './issuer-match.js'
import { readPemBlocks } from './pem.js'
import { peerTrustDomain } from './peer-trust-domain.js'
import type { ChainVerifierOptions } from './chain-verifier.js'

type PemInput = string | Buffer

/**
 * A trust's inputs, as ChainVerifier takes them (the one description of a trust): `ca` or `trustDomains`, `crl`, and
 * `intermediates`, the CAs this process holds without trusting them (a server's own), which here name the CAs above
 * a client certificate when its chain is not at hand (a resumed session), by the key that signed it.
 */
export type TrustOptions = ChainVerifierOptions

/** A certificate of a chain record, read once, with its names in the form OpenSSL compares them. */
export interface ChainCertificate extends ChainEntry {
  readonly der: Buffer
}

/**
 * The chain OpenSSL verified for a connection, as far as this process knows it: the peer's certificate first,
 * the trusted root it ends at (the anchor) last.
 * - `'presented'`: the certificates the peer sent, as Node showed them, up to the anchor of the trust it was
 *   verified against (found by the top certificate's signature).
 * - `'trust'`: the peer's certificate, then the CAs of the trust whose keys signed each link (the peer's chain was
 *   not at hand: a resumed session). Same names and keys as what the peer sent; serials and validity are the trust's copies'.
 */
export interface ChainRecord {
  readonly certificates: readonly ChainCertificate[]
  readonly source: 'presented' | 'trust'
  /** The earliest `notAfter` of the chain, in ms. */
  readonly until: number
}

/** Why a chain does not stand under a trust: OpenSSL's name for the verdict a new handshake would get, and a sentence. */
export interface TrustRefusal {
  readonly code: VerificationErrorCode
  readonly message: string
}

/** What changed between two trusts, for the chains OpenSSL verified under the earlier one. */
export interface TrustChange {
  /** Nothing such a chain could now be refused for: fewer CRLs, anchors or bundles only lift refusals. */
  readonly none: boolean
  /** Every chain is judged whole: an anchor withdrawn, a bundle changed, or CRL checking turned on. */
  readonly whole: boolean
  /** The issuers (name keys, see `Trust.issuerKey`) whose CRLs changed, CRL checking being on before and after. */
  readonly crlIssuers: ReadonlySet<string>
}

interface Authority extends ChainCertificate {
  readonly key: KeyObject
  readonly selfSigned: boolean
  readonly trusted: boolean
}

type Crl = LoadedCrl

// OpenSSL's default verify depth: chains as long as it takes.
const MAX_DEPTH = 100
const MAX_REMEMBERED = 4096
/**
 * A trust as OpenSSL holds it for a TLS context (its CA certificates, by SPIFFE trust domain or not, and its CRLs),
 * for what OpenSSL does not do: keep each connection's verdict current when the trust changes, and hold a peer to
 * its own trust domain. It never builds or verifies a path: a chain OpenSSL verified is recorded
 * (`presentedChain`, `chainFromTrust`) and judged by what the trust says of its certificates (`judge`): its anchor
 * still trusted, none of its certificates revoked, no CRL of their issuers that OpenSSL would refuse, each within its
 * validity, its anchor in the bundle of the peer's own trust domain. Built once per trust; immutable.
 */
export class Trust {
  /** SHA-256 over the CA certificates, bundles and CRLs: equal digests are one trust for OpenSSL. */
  readonly digest: string
  /** The SPIFFE trust domains the trust holds bundles for, or `null` when it is not kept by trust domain. */
  readonly trustDomains: ReadonlySet<string> | null
  /**
   * The one trust domain whose bundle holds every root of the trust, or `null`: a chain OpenSSL verified against
   * this trust then ends in that trust domain's bundle, and only the peer's own trust domain is left to look at.
   */
  readonly soleTrustDomain: string | null
  /** Until when the trust serves: the earliest next update of its CRLs (OpenSSL refuses every peer after it). */
  readonly freshUntil: number
  /** Whether the trust holds CRLs (OpenSSL then wants one from the issuer of every certificate of a chain). */
  readonly checksCrls: boolean

  readonly #trusted = new Map<string, Authority>() // by DER
  readonly #known = new Map<string, Authority>() // trusted and intermediates, by DER
  readonly #bySubject = new Map<string, Authority[]>() // trusted and intermediates
  readonly #domains = new Map<Authority, ReadonlySet<string>>()
  readonly #crls = new Map<string, Crl[]>() // by issuer name
  // Whose key signed a certificate or CRL: checked once per certificate and trust (bounded; leaves are many).
  readonly #issuers = new Map<string, Authority | null>()
  readonly #crlSigners = new Map<Crl, Map<string, boolean>>()
  readonly #signatures = new Map<string, boolean>()
  readonly #ca: readonly PemInput[]
  readonly #bundles: ReadonlyMap<string, PemInput | readonly PemInput[]> | null
  readonly #crlPems: readonly PemInput[]
  readonly #intermediatePems: readonly PemInput[]

  constructor (options: TrustOptions) {
    if (options.trustDomains !== undefined && options.ca !== undefined) throw new MaterialError('ERR_MTLS_MATERIAL_OPTION_INVALID', 'give ca or trustDomains, not both')
    this.#ca = list(options.ca)
    this.#bundles = options.trustDomains ?? null
    this.#crlPems = list(options.crl)
    this.#intermediatePems = list(options.intermediates)
    const bundles = this.#bundles === null ? [{ name: null, pems: this.#ca }] : [...this.#bundles].map(([name, pems]) => ({ name, pems: list(pems) }))
    for (const { name, pems } of bundles) {
      for (const x509 of certificates(pems, name === null ? 'ca' : `trust bundle of ${name}`)) {
        const authority = this.#add(x509, true)
        if (name !== null) this.#domains.set(authority, new Set([...(this.#domains.get(authority) ?? []), name]))
      }
    }
    if (this.#trusted.size === 0) throw new MaterialError('ERR_MTLS_MATERIAL_CA_EMPTY', 'ca: no CA certificate (-----BEGIN CERTIFICATE-----) found')
    for (const x509 of certificates(this.#intermediatePems, 'intermediates')) this.#add(x509, false)
    this.trustDomains = this.#bundles === null ? null : new Set(this.#bundles.keys())
    this.soleTrustDomain = [...this.trustDomains ?? []].find(name => [...this.#trusted.values()].every(root => this.#domains.get(root)?.has(name) === true)) ?? null
    let freshUntil = Infinity
    this.#crlPems.flatMap(text => readPemBlocks(String(text)).filter(block => block.label === 'X509 CRL')).forEach((block, index) => {
      let fields: CrlFields
      try {
        fields = readCrlFields(block.der)
      } catch (err) {
        throw new MaterialError('ERR_MTLS_MATERIAL_CRL_MALFORMED', `crl: CRL ${index + 1} is malformed (${(err as Error).message})`, { cause: err })
      }
      const crl = { der: block.der, fields, issuerName: canonicalName(block.der, fields.issuer) }
      const crls = this.#crls.get(crl.issuerName)
      if (crls === undefined) this.#crls.set(crl.issuerName, [crl])
      else crls.push(crl)
      freshUntil = Math.min(freshUntil, fields.nextUpdate?.getTime() ?? Infinity)
    })
    this.checksCrls = this.#crls.size > 0
    this.freshUntil = freshUntil
    this.digest = digestOf([this.#ca.map(String), this.#crlPems.map(String), ...[...this.#bundles ?? []].flatMap(([name, pems]) => [[name], list(pems).map(String)])])
  }

  /**
   * The chain OpenSSL verified on a full handshake, from what the peer sent (`presented`: its certificate first, as
   * Node shows the chain): built as OpenSSL builds it, from the peer's certificate up, at each link a CA of this
   * trust first (OpenSSL's default, X509_V_FLAG_TRUSTED_FIRST), else one the peer sent, each the one whose key
   * signed the link (checked by OpenSSL, `X509Certificate#verify`, once per pair and trust), to a trusted
   * self-signed root. Node links what it shows by names only, and a peer may send anything: nothing it sent is
   * taken on its word. `null` when no such chain exists here.
   */
  presentedChain (presented: readonly Uint8Array[]): ChainRecord | null {
    const leaf = presented[0] === undefined ? null : chainCertificate(presented[0])
    if (leaf === null) return null
    const sent = presented.slice(1, MAX_DEPTH + 1).map(chainCertificate).filter((certificate): certificate is ChainCertificate => certificate !== null)
    const certificates: ChainCertificate[] = [leaf]
    const now = Date.now()
    for (let current: ChainCertificate = leaf; certificates.length <= MAX_DEPTH;) {
      // Of several the peer sent, one within its validity first, as OpenSSL's find_issuer takes it.
      const issuer: ChainCertificate | null = this.#issuerOf(current, true) ??
        [...sent].sort((a, b) => Number(within(b.fields, now)) - Number(within(a.fields, now))).find(candidate => !certificates.includes(candidate) && this.#signed(current, candidate)) ?? null
      if (issuer === null) return null
      certificates.push(issuer)
      if ((issuer as Partial<Authority>).trusted === true && (issuer as Authority).selfSigned) return record(certificates, 'presented')
      current = issuer
    }
    return null
  }

  /**
   * The chain above a peer's certificate as this trust knows it, when the peer's chain is not at hand (a resumed
   * session): at each link the CA of the trust (or of its intermediates) whose key signed it, up to a trusted root.
   * `null` when the trust does not hold the CAs above it.
   */
  chainFromTrust (certificate: Uint8Array): ChainRecord | null {
    const leaf = chainCertificate(certificate)
    return leaf === null ? null : this.#anchored([leaf], false, 'trust')
  }

  // `certificates` continued upwards with the CAs of this trust that signed each link (only trusted ones when
  // `trustedOnly`), to a trusted self-signed root; `null` where none did.
  #anchored (certificates: ChainCertificate[], trustedOnly: boolean, source: ChainRecord['source']): ChainRecord | null {
    for (let current = certificates[certificates.length - 1] as ChainCertificate; certificates.length <= MAX_DEPTH;) {
      const issuer = this.#issuerOf(current, trustedOnly)
      if (issuer === null) return null
      certificates.push(issuer)
      if (issuer.trusted && issuer.selfSigned) return record(certificates, source)
      current = issuer
    }
    return null
  }

  /**
   * Whether a chain OpenSSL verified, under this trust or an earlier one, stands under this trust at `now`:
   * `null`, or what a new handshake would be refused for. Judges the record only: its anchor still trusted (and in
   * the bundle of the peer's own trust domain), each certificate (the anchor too) neither listed by a CRL of its
   * issuer (in any shard: stricter than OpenSSL) nor without a CRL of its issuer covering it when the trust holds
   * CRLs, no CRL of those issuers that OpenSSL would refuse, and every certificate within its validity.
   */
  judge (chain: ChainRecord, now: number = Date.now()): TrustRefusal | null {
    const certificates = chain.certificates
    const anchor = certificates[certificates.length - 1] as ChainCertificate
    const trusted = this.#trusted.get(key(anchor.der))
    if (trusted === undefined) return refusal('UNABLE_TO_GET_ISSUER_CERT_LOCALLY', `its chain ends at ${describe(anchor.fields)}, which this trust does not hold`)
    const domainRefusal = this.#trustDomainRefusal(certificates[0] as ChainCertificate, trusted)
    if (domainRefusal !== null) return domainRefusal
    if (this.checksCrls) {
      // Every certificate, the root included (its own CRL judges it), as CRL_CHECK_ALL has OpenSSL do.
      for (let index = 0; index < certificates.length; index++) {
        const crlRefusal = this.#revocationRefusal(certificates[index] as ChainCertificate, (certificates[index + 1] ?? anchor) as ChainCertificate, now)
        if (crlRefusal !== null) return crlRefusal
      }
    }
    for (const { fields } of certificates) {
      if (fields.notBefore.getTime() > now) return refusal('CERT_NOT_YET_VALID', `${describe(fields)} is not valid until ${fields.notBefore.toISOString()}`)
      if (fields.notAfter.getTime() < now) return refusal('CERT_HAS_EXPIRED', `${describe(fields)} expired at ${fields.notAfter.toISOString()}`)
    }
    return null
  }

  /**
   * Whether a peer's certificate alone stands under this trust, where only the CRLs of its own issuer changed
   * (`changeSince(...).crlIssuers`): listed in one of them, or one of them refused. The issuer is found by the
   * key that signed the certificate; `undefined` when this trust does not hold it (then the whole chain decides).
   */
  judgeLeaf (certificate: Uint8Array, now: number = Date.now()): TrustRefusal | null | undefined {
    const leaf = chainCertificate(certificate)
    if (leaf === null) return undefined
    const issuer = this.#issuerOf(leaf, false)
    // A self-issued issuer (a root, or a link certificate of a renewed CA) is judged by the same CRLs: the whole chain decides.
    if (issuer === null || issuer.subjectName === issuer.issuerName) return undefined
    return this.#revocationRefusal(leaf, issuer, now)
  }

  /** What changed since `previous`, for the chains OpenSSL verified under it. */
  changeSince (previous: Trust): TrustChange {
    if (previous === this || previous.digest === this.digest) return { none: true, crlIssuers: new Set(), whole: false }
    const anchorsKept = [...previous.#trusted.keys()].every(der => this.#trusted.has(der))
    const domainsKept = [...previous.#domains].every(([authority, names]) => sameSet(this.#domains.get(this.#trusted.get(key(authority.der)) as Authority), names))
    // Trust kept by trust domain, or no longer so: every chain is held to (or let go of) its trust domain's bundle.
    const modeKept = (this.trustDomains === null) === (previous.trustDomains === null)
    const whole = !anchorsKept || !domainsKept || !modeKept || (this.checksCrls && !previous.checksCrls)
    const crlIssuers = new Set<string>()
    for (const issuer of new Set([...previous.#crls.keys(), ...this.#crls.keys()])) {
      const before = (previous.#crls.get(issuer) ?? []).map(crl => key(crl.der)).sort()
      const after = (this.#crls.get(issuer) ?? []).map(crl => key(crl.der)).sort()
      if (before.length !== after.length || before.some((der, index) => der !== after[index])) crlIssuers.add(issuer)
    }
    // Fewer anchors, CRLs or bundles can only lift refusals a handshake under this trust would not get, never add one.
    return { none: !whole && (crlIssuers.size === 0 || !this.checksCrls), crlIssuers, whole }
  }

  /** The issuer name key of a certificate, as `changeSince(...).crlIssuers` holds them; `null` for bytes that are not one. */
  static issuerKey (certificate: Uint8Array): string | null {
    return chainCertificate(certificate)?.issuerName ?? null
  }

  /**
   * The SPIFFE trust domain of a peer's certificate, when this trust holds a bundle for it: `null` with a refusal
   * when it has no SPIFFE ID (or several), or its trust domain has no bundle. For a trust not kept by trust domain: `null`, no refusal.
   */
  peerTrustDomain (fields: Pick<CertificateFields, 'uris'>): { trustDomain: string | null, refusal: TrustRefusal | null } {
    return this.trustDomains === null ? { trustDomain: null, refusal: null } : peerTrustDomain(fields, this.trustDomains)
  }

  /**
   * For a trust kept by SPIFFE trust domain: whether a chain OpenSSL verified (against every bundle at once) ends
   * in the bundle of its peer's own trust domain; `null` when it does, or for another trust.
   */
  trustDomainRefusal (chain: ChainRecord): TrustRefusal | null {
    if (this.trustDomains === null) return null
    const anchor = this.#trusted.get(key((chain.certificates[chain.certificates.length - 1] as ChainCertificate).der))
    if (anchor === undefined) return refusal('UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'its chain ends at a root this trust does not hold')
    return this.#trustDomainRefusal(chain.certificates[0] as ChainCertificate, anchor)
  }

  #trustDomainRefusal (leaf: ChainCertificate, anchor: Authority): TrustRefusal | null {
    const { trustDomain, refusal: unnamed } = this.peerTrustDomain(leaf.fields)
    if (unnamed !== null || trustDomain === null) return unnamed
    const domains = this.#domains.get(anchor)
    if (domains?.has(trustDomain) === true) return null
    return refusal('ERR_MTLS_TRUST_DOMAIN_UNTRUSTED', `${describe(leaf.fields)} claims the trust domain ${trustDomain}, but its chain ends at ${describe(anchor.fields)}, a root of ${[...domains ?? []].join(', ')}`)
  }

  /** The constructor options of this trust, for a ChainVerifier of the same trust (forwarded certificates). */
  get options (): TrustOptions {
    return {
      ...(this.#bundles === null ? { ca: this.#ca } : { trustDomains: this.#bundles }),
      ...(this.#crlPems.length === 0 ? {} : { crl: this.#crlPems }),
      ...(this.#intermediatePems.length === 0 ? {} : { intermediates: this.#intermediatePems })
    }
  }

  #add (x509: X509Certificate, trusted: boolean): Authority {
    const der = x509.raw
    const existing = this.#known.get(key(der))
    if (existing !== undefined) return existing
    const { fields, subjectName, issuerName } = chainCertificate(der) as ChainCertificate
    // Whether it signed itself is asked only of a CA a chain reaches: a federated bundle of thousands of roots pays
    // for one signature check per root some peer's chain ends at, not for each (about 250 µs apiece).
    let selfSigned: boolean | undefined
    const authority: Authority = {
      der,
      fields,
      subjectName,
      issuerName,
      key: x509.publicKey,
      trusted,
      get selfSigned () { return (selfSigned ??= subjectName === issuerName && x509.verify(x509.publicKey)) }
    }
    this.#known.set(key(der), authority)
    if (trusted) this.#trusted.set(key(der), authority)
    const named = this.#bySubject.get(subjectName)
    if (named === undefined) this.#bySubject.set(subjectName, [authority])
    else named.push(authority)
    return authority
  }

  // The CA of this trust whose key signed `certificate` (OpenSSL checks the signature: X509Certificate#verify), once
  // per certificate and trust; of several, a trusted one first, then one within its validity.
  #issuerOf (certificate: ChainCertificate, trustedOnly: boolean): Authority | null {
    const remembered = `${trustedOnly ? 't' : 'a'}${key(certificate.der)}`
    const known = this.#issuers.get(remembered)
    if (known !== undefined) return known
    const now = Date.now()
    const candidates = (this.#bySubject.get(certificate.issuerName) ?? [])
      .filter(authority => (authority.trusted || !trustedOnly) && !authority.der.equals(certificate.der))
      .sort((a, b) => Number(b.trusted) - Number(a.trusted) || Number(within(b.fields, now)) - Number(within(a.fields, now)))
    let issuer: Authority | null = null
    if (candidates.length > 0) {
      const x509 = new X509Certificate(certificate.der)
      issuer = candidates.find(candidate => x509.verify(candidate.key)) ?? null
    }
    if (this.#issuers.size >= MAX_REMEMBERED) this.#issuers.delete(this.#issuers.keys().next().value as string)
    this.#issuers.set(remembered, issuer)
    return issuer
  }

  // Whether `issuer` (a certificate the peer sent) names and signed `certificate`: once per pair and trust.
  #signed (certificate: ChainCertificate, issuer: ChainCertificate): boolean {
    if (issuer.subjectName !== certificate.issuerName) return false
    const pair = `${key(certificate.der)}\u0000${key(issuer.der)}`
    let signed = this.#signatures.get(pair)
    if (signed === undefined) {
      try {
        signed = new X509Certificate(certificate.der).verify(new X509Certificate(issuer.der).publicKey)
      } catch {
        signed = false
      }
      if (this.#signatures.size >= MAX_REMEMBERED) this.#signatures.delete(this.#signatures.keys().next().value as string)
      this.#signatures.set(pair, signed)
    }
    return signed
  }

  // Revocation of `certificate` by the CRLs its issuer signed, as OpenSSL with CRL_CHECK_ALL would find it, or stricter.
  #revocationRefusal (certificate: ChainCertificate, issuer: ChainCertificate, now: number): TrustRefusal | null {
    const own = (this.#crls.get(certificate.issuerName) ?? []).filter(crl => this.#signedBy(crl, issuer))
    if (own.length === 0) return refusal('UNABLE_TO_GET_CRL', `no CRL of ${describe(issuer.fields)} is loaded, so ${describe(certificate.fields)} cannot be checked for revocation`)
    if (issuer.fields.keyUsage !== null && (issuer.fields.keyUsage & KEY_USAGE.cRLSign) === 0) {
      return refusal('KEYUSAGE_NO_CRL_SIGN', `${describe(issuer.fields)} signed a CRL, but its key usage does not allow cRLSign`)
    }
    for (const crl of own) {
      if (crl.fields.unhandledCritical) return refusal('UNHANDLED_CRITICAL_CRL_EXTENSION', `a CRL of ${describe(issuer.fields)} has a critical extension OpenSSL does not handle`)
      // A listing counts in any CRL of the issuer, whatever its scope: stricter than OpenSSL, which reads the one in scope.
      if (crl.fields.revoked.has(certificate.fields.serialNumber)) return refusal('CERT_REVOKED', `${describe(certificate.fields)} (serial ${certificate.fields.serialNumber}) is revoked`)
    }
    // OpenSSL wants a complete CRL whose scope covers the certificate (a shard covers the certificates that name it).
    const covering = own.filter(crl => !crl.fields.deltaCrlIndicator && crlUsable(crl.fields) && covers(crl, certificate))
    if (covering.length === 0) return refusal('UNABLE_TO_GET_CRL', `no CRL of ${describe(issuer.fields)} covers ${describe(certificate.fields)} (its CRLs are scoped to other certificates)`)
    if (!covering.some(crl => crlCurrent(crl.fields, now))) {
      const newest = covering.reduce((a, b) => b.fields.thisUpdate > a.fields.thisUpdate ? b : a)
      return newest.fields.thisUpdate.getTime() > now
        ? refusal('CRL_NOT_YET_VALID', `the CRL of ${describe(issuer.fields)} is not valid until ${newest.fields.thisUpdate.toISOString()}`)
        : refusal('CRL_HAS_EXPIRED', `the CRL of ${describe(issuer.fields)} was due for renewal at ${(newest.fields.nextUpdate as Date).toISOString()}`)
    }
    return null
  }

  // Whether `issuer`'s key signed the CRL: once per CRL and issuer certificate.
  #signedBy (crl: Crl, issuer: ChainCertificate): boolean {
    let byIssuer = this.#crlSigners.get(crl)
    if (byIssuer === undefined) this.#crlSigners.set(crl, byIssuer = new Map())
    const issuerKey = key(issuer.der)
    let signed = byIssuer.get(issuerKey)
    if (signed === undefined) {
      signed = crlSignedWith(crl, (issuer as Partial<Authority>).key ?? new X509Certificate(issuer.der).publicKey)
      byIssuer.set(issuerKey, signed)
    }
    return signed
  }

  /** The trust of some material (its CAs or bundles, CRLs, and its own intermediates), built once per material and trust. */
  static forMaterial (material: { readonly cert: string, readonly ca: readonly string[], readonly crl: readonly string[], readonly trustDomains?: ReadonlyMap<string, readonly string[]> | null }): Trust {
    let trust = byMaterial.get(material)
    if (trust === undefined) {
      const intermediates = readPemBlocks(material.cert).slice(1).map(block => block.pem)
      const bundles = material.trustDomains ?? null
      const digest = digestOf([material.ca, material.crl, intermediates, [String(bundles !== null)], ...[...bundles ?? []].flatMap(([name, pems]) => [[name], pems])])
      trust = byDigest.get(digest)
      if (trust === undefined) {
        trust = new Trust({ ...(bundles === null ? { ca: material.ca } : { trustDomains: bundles }), crl: material.crl, intermediates })
        if (byDigest.size >= 8) byDigest.delete(byDigest.keys().next().value as string)
        byDigest.set(digest, trust)
      }
      byMaterial.set(material, trust)
    }
    return trust
  }
}

// One Trust per material and per trust: a certificate-only rotation keeps it, and with it every verdict judged against it.
const byMaterial = new WeakMap<object, Trust>()
const byDigest = new Map<string, Trust>()

function record (certificates: ChainCertificate[], source: ChainRecord['source']): ChainRecord {
  const until = Math.min(...certificates.map(certificate => certificate.fields.notAfter.getTime()))
  return Object.freeze({ certificates: Object.freeze(certificates), source, until })
}

function chainCertificate (der: Uint8Array): ChainCertificate | null {
  try {
    const buffer = Buffer.isBuffer(der) ? der : Buffer.from(der)
    const fields = readCertificateFields(buffer)
    return { der: buffer, fields, subjectName: canonicalName(buffer, fields.subject), issuerName: canonicalName(buffer, fields.issuer) }
  } catch {
    return null
  }
}

function refusal (code: TrustRefusal['code'], message: string): TrustRefusal {
  return Object.freeze({ code, message })
}

function within (fields: CertificateFields, now: number): boolean {
  return fields.notBefore.getTime() <= now && now <= fields.notAfter.getTime()
}

function sameSet (a: ReadonlySet<string> | undefined, b: ReadonlySet<string>): boolean {
  return a !== undefined && a.size === b.size && [...b].every(item => a.has(item))
}

// Whether a CRL's scope covers the certificate; a scope that cannot be compared here covers nothing (the certificate
// then has no CRL, and is refused, as ChainVerifier refuses it).
function covers (crl: Crl, certificate: ChainCertificate): boolean {
  try {
    return inScope(crl, certificate)
  } catch (err) {
    if (err instanceof UndecidableScope) return false
    throw err
  }
}

function list (input: PemInput | readonly PemInput[] | undefined): readonly PemInput[] {
  if (input === undefined) return []
  const items = (Array.isArray(input) ? input : [input]) as PemInput[]
  items.forEach((item, index) => {
    if (typeof item !== 'string' && !Buffer.isBuffer(item)) throw new MaterialError('ERR_MTLS_MATERIAL_OPTION_INVALID', `PEM input ${index + 1} must be a string or a Buffer`)
  })
  return Object.freeze([...items])
}

// The certificates of PEM inputs, each read by mtls-core's DER reader and by Node (OpenSSL): one neither reads is refused.
function certificates (pems: readonly PemInput[], name: string): X509Certificate[] {
  return pems.flatMap(text => readPemBlocks(String(text)).filter(block => block.label === 'CERTIFICATE')).map((block, index) => {
    try {
      readCertificateFields(block.der)
      return new X509Certificate(block.der)
    } catch (err) {
      throw new MaterialError('ERR_MTLS_MATERIAL_CERT_MALFORMED', `${name}: certificate ${index + 1} is malformed (${(err as Error).message})`, { cause: err })
    }
  })
}

// Each list's length and each element's length go into the digest, so no two trusts share one.
function digestOf (lists: ReadonlyArray<readonly string[]>): string {
  const hash = createHash('sha256')
  for (const items of lists) {
    hash.update(`${items.length}:`)
    for (const item of items) hash.update(`${Buffer.byteLength(item)}:`).update(item)
  }
  return hash.digest('hex')
}

function key (der: Uint8Array): string {
  return Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString('latin1')
}

function describe (fields: CertificateFields): string {
  return fields.commonName === null ? `the certificate with serial ${fields.serialNumber}` : `"${fields.commonName}"`
}
