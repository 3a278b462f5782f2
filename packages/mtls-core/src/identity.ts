import { X509Certificate, createHash } from 'node:crypto'
import { KEY_USAGE, formatName, readCertificateFields, type CertificateFields } from './der.js'
import { CertificateError, SvidError, describeThrown, type SpiffeIdError } from './errors.js'
import { parseSpiffeId, type SpiffeId } from './spiffe-id.js'

/** Who a peer is, from its certificate. Frozen. */
export interface PeerIdentity {
  /**
   * Who the peer is, in the syntax of identity patterns, so it can be pasted into a policy as it is:
   * the SPIFFE ID (`spiffe://…`, only for a valid X509-SVID), else `dns:<first DNS SAN>`, else
   * `cn:<subject CN>`, else `sha256:<fingerprint256>`.
   */
  readonly id: string
  /** The parsed SPIFFE ID when the certificate has one valid X509-SVID URI SAN, else `null`. */
  readonly spiffeId: SpiffeId | null
  readonly uris: readonly string[]
  readonly dnsNames: readonly string[]
  /** IPv4 dotted, IPv6 in RFC 5952 form (`::1`). */
  readonly ips: readonly string[]
  readonly emails: readonly string[]
  readonly commonName: string | null
  /** RFC 4514 style, in certificate order, values escaped: `O=Acme, CN=order-service`. Formatted on first read. */
  readonly subject: string
  readonly issuer: string
  /** Uppercase hex. */
  readonly serialNumber: string
  /** As Node's `X509Certificate#fingerprint256`: `AB:CD:...`. Worked out on first read. */
  readonly fingerprint256: string
  /**
   * RFC 8705's certificate thumbprint (`x5t#S256`): the SHA-256 of the certificate's DER, base64url without padding.
   * A certificate-bound access token carries it as `cnf['x5t#S256']`. Worked out on first read.
   */
  readonly thumbprintS256: string
  readonly notBefore: Date
  readonly notAfter: Date
  /**
   * `'tls'` when read from this connection's handshake, `'forwarded'` when a trusted proxy passed it on, `'jwt-svid'`
   * when a validated JWT-SVID named it (fastify-mtls-identity's `jwtSvid`: no certificate, so its fields are empty).
   */
  readonly source: 'tls' | 'forwarded' | 'jwt-svid'
  /** Every field as plain data (the SPIFFE ID as text), for logs and JSON. */
  toJSON: () => PeerIdentityJson
}

export type PeerIdentityJson = Omit<PeerIdentity, 'spiffeId' | 'toJSON'> & { readonly spiffeId: string | null }

export interface PeerIdentityOptions {
  /** Default: `'tls'`. */
  source?: 'tls' | 'forwarded'
  /**
   * Check the X509-SVID rules when the certificate carries a `spiffe:` URI SAN. Default: `true`.
   * With `false`, a certificate that breaks them simply has `spiffeId: null`.
   */
  svid?: boolean
  /**
   * Chooses `id` instead of the default order (SPIFFE ID, DNS name, CN, fingerprint). Its result must be a
   * non-empty string, and may start with `spiffe:` only when it is the certificate's verified SPIFFE ID.
   */
  identify?: (identity: Omit<PeerIdentity, 'id' | 'toJSON'>) => string
}

/**
 * Turns a peer certificate into a frozen PeerIdentity. Pass Node's own certificate object
 * (`socket.getPeerX509Certificate()`) where there is one: its fingerprint and names come ready-made.
 * SANs, key usage and the CN are read from the DER, never from Node's `subjectaltname` string.
 * Throws CertificateError when the DER cannot be read (`ERR_MTLS_CERTIFICATE_MALFORMED`) or is a CA certificate
 * (`ERR_MTLS_CERTIFICATE_IS_CA`: OpenSSL accepts a `CA:TRUE` leaf, but a CA is never a peer), SvidError when a
 * SPIFFE certificate breaks the X509-SVID rules (unless `svid: false`).
 */
export function toPeerIdentity (certificate: X509Certificate | Uint8Array, options: PeerIdentityOptions = {}): PeerIdentity {
  const native = certificate instanceof X509Certificate ? certificate : null
  const der = native === null ? certificate as Uint8Array : native.raw
  const fields = readCertificateFields(der)
  if (fields.isCa) throw new CertificateError('ERR_MTLS_CERTIFICATE_IS_CA', 'a CA certificate (basicConstraints CA:TRUE) is not a peer identity, whatever names it carries')
  const spiffeId = spiffeIdOf(fields, options.svid !== false)
  return new Identity(der, native, fields, spiffeId, options)
}

// A class so that the fingerprint, subject and issuer, rarely read, are worked out on first read rather than per connection.
class Identity implements PeerIdentity {
  readonly id: string
  readonly spiffeId: SpiffeId | null
  readonly uris: readonly string[]
  readonly dnsNames: readonly string[]
  readonly ips: readonly string[]
  readonly emails: readonly string[]
  readonly commonName: string | null
  readonly serialNumber: string
  readonly notBefore: Date
  readonly notAfter: Date
  readonly source: 'tls' | 'forwarded'
  readonly #der: Uint8Array
  readonly #native: X509Certificate | null
  readonly #fields: CertificateFields
  #fingerprint: string | undefined
  #thumbprint: string | undefined
  #subject: string | undefined
  #issuer: string | undefined

  constructor (der: Uint8Array, native: X509Certificate | null, fields: CertificateFields, spiffeId: SpiffeId | null, options: PeerIdentityOptions) {
    this.#der = der
    this.#native = native
    this.#fields = fields
    this.spiffeId = spiffeId
    this.uris = Object.freeze(fields.uris)
    this.dnsNames = Object.freeze(fields.dnsNames)
    this.ips = Object.freeze(fields.ips)
    this.emails = Object.freeze(fields.emails)
    this.commonName = fields.commonName
    this.serialNumber = fields.serialNumber
    // Copies: the fields are shared by every connection with this certificate, and a Date can be changed.
    this.notBefore = new Date(fields.notBefore.getTime())
    this.notAfter = new Date(fields.notAfter.getTime())
    this.source = options.source ?? 'tls'
    this.id = options.identify === undefined ? defaultId(this) : chosenId(this, options.identify)
    Object.freeze(this)
  }

  get fingerprint256 (): string {
    return (this.#fingerprint ??= this.#native?.fingerprint256 ?? fingerprint256(this.#der))
  }

  get thumbprintS256 (): string {
    return (this.#thumbprint ??= thumbprintS256(this.#der))
  }

  get subject (): string {
    return (this.#subject ??= formatName(this.#der, this.#fields.subject))
  }

  get issuer (): string {
    return (this.#issuer ??= formatName(this.#der, this.#fields.issuer))
  }

  toJSON (): PeerIdentityJson {
    const { id, uris, dnsNames, ips, emails, commonName, subject, issuer, serialNumber, fingerprint256, thumbprintS256, notBefore, notAfter, source } = this
    return { id, spiffeId: this.spiffeId?.toString() ?? null, uris, dnsNames, ips, emails, commonName, subject, issuer, serialNumber, fingerprint256, thumbprintS256, notBefore, notAfter, source }
  }
}

function defaultId (identity: Omit<PeerIdentity, 'id' | 'toJSON'>): string {
  if (identity.spiffeId !== null) return identity.spiffeId.toString()
  const dnsName = identity.dnsNames[0]
  if (dnsName !== undefined) return `dns:${dnsName}`
  if (identity.commonName !== null) return `cn:${identity.commonName}`
  return `sha256:${identity.fingerprint256}`
}

// An id that reads as a SPIFFE ID would be believed as one in audit lines, messages and policies.
function chosenId (identity: Omit<PeerIdentity, 'id' | 'toJSON'>, identify: (identity: Omit<PeerIdentity, 'id' | 'toJSON'>) => string): string {
  let id: unknown
  try {
    id = identify(identity)
  } catch (err) {
    throw new CertificateError('ERR_MTLS_CERTIFICATE_ID_INVALID', `identify() threw: ${describeThrown(err)}`, { cause: err })
  }
  if (typeof id !== 'string' || id === '') throw new CertificateError('ERR_MTLS_CERTIFICATE_ID_INVALID', 'identify() must return a non-empty string')
  if (id.trimStart().slice(0, 7).toLowerCase() === 'spiffe:' && id !== identity.spiffeId?.toString()) {
    throw new CertificateError('ERR_MTLS_CERTIFICATE_ID_CONFUSABLE', `identify() returned ${JSON.stringify(id)}, which reads as a SPIFFE ID the certificate does not carry`)
  }
  return id
}

function spiffeIdOf (fields: CertificateFields, check: boolean): SpiffeId | null {
  let spiffeUris = 0
  for (const uri of fields.uris) if (uri.slice(0, 7).toLowerCase() === 'spiffe:') spiffeUris++
  if (spiffeUris === 0) return null
  try {
    return checkSvid(fields)
  } catch (err) {
    if (check) throw err
    return null
  }
}

// The same workloads connect again and again: their SPIFFE IDs are parsed once (a parsed ID is frozen).
const parsedIds = new Map<string, SpiffeId>()
function parsedSpiffeId (uri: string): SpiffeId {
  let id = parsedIds.get(uri)
  if (id === undefined) {
    id = parseSpiffeId(uri)
    if (parsedIds.size >= 1000) parsedIds.delete(parsedIds.keys().next().value as string)
    parsedIds.set(uri, id)
  }
  return id
}

/** The X509-SVID rules (SPIFFE X509-SVID specification, sections 2, 4.1 to 4.3) for a leaf that is not a CA. */
function checkSvid (fields: CertificateFields): SpiffeId {
  if (fields.uris.length !== 1) {
    throw new SvidError('ERR_MTLS_SVID_URI_SAN_COUNT', `an X509-SVID has exactly one URI SAN; this certificate has ${fields.uris.length}`)
  }
  let spiffeId: SpiffeId
  try {
    spiffeId = parsedSpiffeId(fields.uris[0] as string)
  } catch (err) {
    throw new SvidError('ERR_MTLS_SVID_INVALID_SPIFFE_ID', `the URI SAN is not a valid SPIFFE ID: ${(err as SpiffeIdError).message}`, { cause: err })
  }
  if (spiffeId.path === '') throw new SvidError('ERR_MTLS_SVID_ROOT_PATH', `the SPIFFE ID of a workload has a path; got ${JSON.stringify(spiffeId.toString())}`)
  // A CA leaf (the spec's "must not be a CA") is refused before, for every certificate: ERR_MTLS_CERTIFICATE_IS_CA.
  if (fields.keyUsage === null) throw new SvidError('ERR_MTLS_SVID_KEY_USAGE_MISSING', 'a leaf X509-SVID must have the key usage extension')
  if ((fields.keyUsage & KEY_USAGE.digitalSignature) === 0) throw new SvidError('ERR_MTLS_SVID_NO_DIGITAL_SIGNATURE', 'a leaf X509-SVID must have the digitalSignature key usage')
  if ((fields.keyUsage & (KEY_USAGE.keyCertSign | KEY_USAGE.cRLSign)) !== 0) {
    throw new SvidError('ERR_MTLS_SVID_CA_KEY_USAGE', 'a leaf X509-SVID must not have the keyCertSign or cRLSign key usage')
  }
  return spiffeId
}

/** SHA-256 of DER in Node's `fingerprint256` form (`AB:CD:...`). */
export function fingerprint256 (der: Uint8Array | ArrayBuffer): string {
  const hex = createHash('sha256').update(der instanceof ArrayBuffer ? new Uint8Array(der) : der).digest('hex').toUpperCase()
  let out = hex.slice(0, 2)
  for (let i = 2; i < hex.length; i += 2) out += ':' + hex.slice(i, i + 2)
  return out
}

/** RFC 8705's `x5t#S256` thumbprint of DER: the SHA-256, base64url without padding (43 characters). */
export function thumbprintS256 (der: Uint8Array | ArrayBuffer): string {
  return createHash('sha256').update(der instanceof ArrayBuffer ? new Uint8Array(der) : der).digest('base64url')
}
