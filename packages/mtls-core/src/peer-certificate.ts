import type { X509Certificate } from 'node:crypto'
import type { TLSSocket } from 'node:tls'
import { readCertificateFields, tlv, type CertificateFields } from './der.js'

const certificates = new WeakMap<object, X509Certificate | null>()
const ders = new WeakMap<object, Buffer | null>()

/**
 * The peer's certificate as DER, once per socket, copied out of the TLS session Node holds for the
 * connection (`getSession()`: OpenSSL keeps the certificate's bytes, and encoding a session copies them)
 * instead of through Node's X509Certificate, which on OpenSSL 3.0 decodes the certificate again, about
 * 200 µs of server CPU a connection on Node 20. Falls back to Node's object when the session says nothing.
 * `null` when the peer sent no certificate. Works on resumed sessions too: the session keeps the peer's leaf.
 */
export function peerCertificateDer (socket: Pick<TLSSocket, 'getPeerX509Certificate' | 'getSession'>): Buffer | null {
  let der = ders.get(socket)
  if (der === undefined) {
    const session = socket.getSession()
    const fromSession = session === undefined ? undefined : sessionPeer(session)
    der = fromSession !== undefined ? fromSession : peerCertificate(socket)?.raw ?? null
    ders.set(socket, der)
  }
  return der
}

// SSL_SESSION as OpenSSL encodes it (ssl/ssl_asn1.c): a SEQUENCE whose optional [3] EXPLICIT field is the
// peer's certificate. `null` when the field is absent (no peer certificate), `undefined` when the bytes are
// not what is expected (then the caller asks Node).
function sessionPeer (session: Buffer): Buffer | null | undefined {
  const outer = header(session, 0)
  if (outer === null || session[0] !== 0x30 || outer.end !== session.length) return undefined
  for (let at = outer.start; at < outer.end;) {
    const field = header(session, at)
    if (field === null) return undefined
    if (session[at] === 0xa3) {
      const certificate = header(session, field.start)
      if (certificate === null || session[field.start] !== 0x30 || certificate.end !== field.end) return undefined
      return Buffer.from(session.subarray(field.start, certificate.end))
    }
    at = field.end
  }
  return null
}

function header (der: Buffer, at: number): { start: number, end: number } | null {
  try {
    return tlv(der, at, der.length)
  } catch {
    return null
  }
}

/**
 * The peer's certificate as Node parsed it, once per socket: every call to Node's
 * `getPeerX509Certificate()` builds a new object (microseconds, right after a handshake that evicted the
 * caches), and several plugins look at the same connection. `null` when the peer sent none.
 */
export function peerCertificate (socket: Pick<TLSSocket, 'getPeerX509Certificate'>): X509Certificate | null {
  let certificate = certificates.get(socket)
  if (certificate === undefined) {
    certificate = socket.getPeerX509Certificate() ?? null
    certificates.set(socket, certificate)
  }
  return certificate
}

/** The certificates the peer sent above its leaf (DER, nearest first) and the earliest expiry of them all, leaf included. */
function presentedChain (certificate: X509Certificate): { intermediates: Buffer[], until: number } {
  const intermediates: Buffer[] = []
  let until = Date.parse(certificate.validTo)
  let previous = certificate.raw
  // A self-signed top certificate is its own issuer: the walk ends there.
  for (let issuer = certificate.issuerCertificate; issuer !== undefined && intermediates.length < 8; issuer = issuer.issuerCertificate) {
    const raw = issuer.raw
    if (raw.equals(previous)) break
    intermediates.push(raw)
    until = Math.min(until, Date.parse(issuer.validTo))
    previous = raw
  }
  return { intermediates, until }
}

/**
 * The certificates the peer sent above its leaf, as DER, nearest first. Node has them on a full handshake
 * only: a resumed session keeps the peer's leaf alone.
 */
export function presentedIntermediates (certificate: X509Certificate): Buffer[] {
  return presentedChain(certificate).intermediates
}

/** The earliest `notAfter` of a peer's leaf and the certificates it sent above it, in ms. */
export function presentedChainExpiry (certificate: X509Certificate): number {
  return presentedChain(certificate).until
}

// An HTTP/2 session shows each stream a proxy of its TLS socket, which forwards property reads to it: the socket
// names itself under this key, so that what is recorded for it is found through the proxy too.
const kTlsSocket = Symbol.for('mtls-core.tls-socket')

/** Lets `socket` be found through the proxies HTTP/2 hands out for it (fastify-mtls marks each connection). */
export function markTlsSocket (socket: object): void {
  Object.defineProperty(socket, kTlsSocket, { value: socket, configurable: true })
}

/** The TLS socket behind `socket` (itself, or what an HTTP/2 proxy stands for, once marked). */
export function tlsSocketOf (socket: object): object {
  return (socket as Record<symbol, object | undefined>)[kTlsSocket] ?? socket
}

// The trust a connection was verified against: as fastify-mtls records it after the handshake (the trust the
// connection was accepted under, which OpenSSL verified it against), and as whoever verifies it again records it
// then: a connection is verified against each trust once.
const handshakeTrusts = new WeakMap<object, object>()
// The verdict on a connection OpenSSL let through and fastify-mtls did not (optional mode), by its TLS socket.
const refusals = new WeakMap<object, string>()

/** Records the trust (a ChainVerifier) `socket`'s certificate was verified against. */
export function recordHandshakeTrust (socket: object, trust: object): void {
  handshakeTrusts.set(tlsSocketOf(socket), trust)
}

/** The trust recorded for `socket` (or the TLS socket an HTTP/2 proxy stands for), or `undefined`. */
export function handshakeTrust (socket: object): object | undefined {
  return handshakeTrusts.get(tlsSocketOf(socket))
}

/** Records why a connection OpenSSL verified is not verified after all (its verdict's code), for whoever reads its identity. */
export function recordRefusal (socket: object, code: string): void {
  refusals.set(tlsSocketOf(socket), code)
}

/** Why `socket`'s certificate was refused after OpenSSL let it through, or `undefined`. */
export function refusalOf (socket: object): string | undefined {
  return refusals.get(tlsSocketOf(socket))
}

// What full handshakes showed of their chains, by leaf, for the sessions they make: a resumed session shows
// the server its leaf alone, and OpenSSL does not verify it again. Bounded (oldest out).
const chains = new Map<string, { until: number, intermediates: Buffer[] }>()
const MAX_CHAINS = 10_000
const expiries = new WeakMap<object, number>()

interface IssuerExpiries { issuedChainExpiry: (certificate: Uint8Array) => number | null }
type ConnectionSocket = Pick<TLSSocket, 'getPeerX509Certificate' | 'getSession' | 'isSessionReused' | 'authorized'>

/**
 * Until when the certificate a connection was verified with lasts: the earliest `notAfter` of the peer's
 * leaf and of the CAs above it: along the CAs of the server's trust whose keys signed the chain when it has
 * them (checked once per certificate and trust); otherwise from the chain the peer sent, on a full handshake
 * (recorded, for the sessions it makes), or as recorded when a resumed session was made here; else the
 * leaf's own. `Infinity` without a certificate. Once per socket; `reverifyConnection` replaces it.
 */
export function connectionExpiry (socket: ConnectionSocket, trust?: IssuerExpiries): number {
  let until = expiries.get(socket)
  if (until === undefined) {
    until = computeExpiry(socket, trust)
    expiries.set(socket, until)
  }
  return until
}

function computeExpiry (socket: ConnectionSocket, trust: IssuerExpiries | undefined): number {
  const der = peerCertificateDer(socket)
  if (der === null) return Infinity
  const fields = readCertificateFields(der)
  const leaf = fields.notAfter.getTime()
  const known = trust === undefined ? null : knownChainExpiry(fields, der, trust)
  if (known !== null) return Math.min(leaf, known)
  return Math.min(leaf, chainOf(socket, der)?.until ?? Infinity)
}

// What a trust knows of the chain above a leaf, once per certificate (readCertificateFields shares one
// fields object per content) and trust: it checks the leaf's signature.
const chainExpiries = new WeakMap<object, { trust: IssuerExpiries, until: number | null }>()

function knownChainExpiry (fields: CertificateFields, der: Buffer, trust: IssuerExpiries): number | null {
  const known = chainExpiries.get(fields)
  if (known !== undefined && known.trust === trust) return known.until
  let until: number | null
  try {
    until = trust.issuedChainExpiry(der)
  } catch {
    until = null // not a certificate the verifier reads: the chain the peer sent decides
  }
  chainExpiries.set(fields, { trust, until })
  return until
}

// The chain a connection's peer sent: read from Node on a full handshake (and recorded), recalled on a resumed one.
function chainOf (socket: ConnectionSocket, der: Buffer): { until: number, intermediates: Buffer[] } | undefined {
  const key = der.toString('latin1')
  if (socket.isSessionReused()) return chains.get(key)
  const certificate = peerCertificate(socket)
  if (certificate === null) return undefined
  const chain = presentedChain(certificate)
  // Node shows the chain only for a while: an HTTP/2 session's socket, read at a request, shows the leaf alone.
  // What the handshake showed of the same leaf completes it (its certificates are candidates, trusted by nothing).
  const recorded = chains.get(key)
  if (chain.intermediates.length === 0 && recorded !== undefined) return recorded
  chains.delete(key)
  chains.set(key, chain)
  if (chains.size > MAX_CHAINS) chains.delete(chains.keys().next().value as string)
  return chain
}

interface Reverifier { verify: (certificate: Uint8Array, options: { purpose: 'client', intermediates: readonly Uint8Array[] }) => number }

/**
 * Verifies a connection's client certificate again, against `trust`, unless it was already verified against
 * it (fastify-mtls and fastify-mtls-identity share the record, so a connection is verified once per trust).
 * Uses the intermediates its peer sent (recalled for a resumed session). Returns until when the verdict
 * holds; throws the verifier's VerificationError.
 */
export function reverifyConnection (socket: ConnectionSocket, trust: Reverifier & object): number {
  // A trust recorded on a socket OpenSSL did not verify vouches for nothing.
  if (handshakeTrust(socket) === trust && socket.authorized) return connectionExpiry(socket)
  const der = peerCertificateDer(socket)
  if (der === null) throw Object.assign(new Error('no client certificate'), { code: 'ERR_MTLS_NO_PEER_CERTIFICATE' })
  // A resumed session shows the leaf alone, and its chain may not be on record: the CAs that completed chains for
  // the trust it was verified against (the server's own intermediates) may complete it again, trusted by nothing.
  const before = handshakeTrust(socket) as { intermediates?: readonly Uint8Array[] } | undefined
  const intermediates = [...(chainOf(socket, der)?.intermediates ?? []), ...(before?.intermediates ?? [])]
  const until = trust.verify(der, { purpose: 'client', intermediates })
  // The new trust's verdict is the connection's expiry from now on, for whoever asks next.
  expiries.set(socket, until)
  recordHandshakeTrust(socket, trust)
  return until
}

interface TrustDomainTrust {
  readonly trustDomains: ReadonlySet<string> | null
  readonly soleTrustDomain: string | null
  peerTrustDomain: (fields: CertificateFields) => string
  verify: (certificate: Uint8Array, options: { purpose: 'client' | 'server', intermediates: readonly Uint8Array[] }) => number
}

/**
 * For a trust kept by SPIFFE trust domain (a ChainVerifier with `trustDomains`): throws VerificationError
 * `ERR_MTLS_TRUST_DOMAIN_UNTRUSTED` unless the peer's chain, which OpenSSL verified against every bundle at once,
 * ends in the bundle of the peer's own trust domain. When one trust domain's bundle holds every root, that is a
 * look at the leaf's SPIFFE ID (read once per certificate); with federated bundles, the chain is verified again
 * against the trust, trust domain by trust domain (with the intermediates the peer sent, recalled for a resumed
 * session), once per certificate, purpose and trust (a success is kept). Does nothing for another trust, or a
 * connection without a certificate. The trust must be the one OpenSSL verified the connection against.
 */
export function checkPeerTrustDomain (socket: ConnectionSocket, trust: TrustDomainTrust, purpose: 'client' | 'server'): void {
  if (trust.trustDomains === null) return
  const der = peerCertificateDer(socket)
  if (der === null) return
  const fields = readCertificateFields(der)
  const trustDomain = trust.peerTrustDomain(fields)
  if (trust.soleTrustDomain === trustDomain || domainVerified.get(fields)?.[purpose] === trust) return
  trust.verify(der, { purpose, intermediates: chainOf(socket, der)?.intermediates ?? [] })
  domainVerified.set(fields, { ...domainVerified.get(fields), [purpose]: trust })
}

// Certificates whose chain was shown to end in their own trust domain's bundle, with the trust that showed it, per
// purpose: a client reconnects with one certificate for hours, and resumes often. Keyed by the fields object
// readCertificateFields shares per content; only a success is kept (a chain the peer completes differently next
// time may still pass). The chain a peer presents is checked for validity on every connection apart from this;
// the one verified here, when another, is not checked again until the trust changes.
const domainVerified = new WeakMap<object, { client?: object, server?: object }>()
