import type { X509Certificate } from 'node:crypto'
import type { TLSSocket } from 'node:tls'

const certificates = new WeakMap<object, X509Certificate | null>()

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

/**
 * The certificates the peer sent above its leaf, as DER, nearest first (Node keeps them with the session, a
 * resumed one too). With the leaf, they are the chain OpenSSL verified; re-verifying it against a new trust
 * needs them, as the peer's intermediates need not be the server's own.
 */
export function presentedIntermediates (certificate: X509Certificate): Buffer[] {
  const intermediates: Buffer[] = []
  let previous = certificate.raw
  // A self-signed top certificate is its own issuer: the walk ends there.
  for (let issuer = certificate.issuerCertificate; issuer !== undefined && intermediates.length < 8; issuer = issuer.issuerCertificate) {
    const raw = issuer.raw
    if (raw.equals(previous)) break
    intermediates.push(raw)
    previous = raw
  }
  return intermediates
}

/** The earliest `notAfter` of a peer's leaf and the certificates it sent above it, in ms. */
export function presentedChainExpiry (certificate: X509Certificate): number {
  let until = Date.parse(certificate.validTo)
  for (let issuer = certificate.issuerCertificate, depth = 0; issuer !== undefined && depth < 8; issuer = issuer.issuerCertificate, depth++) {
    until = Math.min(until, Date.parse(issuer.validTo))
  }
  return until
}

// The trust a connection's handshake was verified against, as fastify-mtls records it when the connection
// is made: whoever decides on the connection later re-verifies it when the trust in force is another.
const handshakeTrusts = new WeakMap<object, object>()

/** Records the trust (a ChainVerifier) in force when `socket`'s handshake was verified. */
export function recordHandshakeTrust (socket: object, trust: object): void {
  handshakeTrusts.set(socket, trust)
}

/** The trust recorded for `socket`'s handshake, or `undefined`. */
export function handshakeTrust (socket: object): object | undefined {
  return handshakeTrusts.get(socket)
}

// When the chains of recent full handshakes expire, by leaf: a resumed session shows the server its leaf but
// not the intermediates the client sent, and OpenSSL does not verify it again. Bounded (oldest out).
const chainExpiries = new Map<string, number>()
const MAX_CHAINS = 10_000

/** Records when the chain a peer presented in a full handshake expires; returns that time (ms). */
export function recordChainExpiry (certificate: X509Certificate): number {
  const key = certificate.raw.toString('latin1')
  const until = presentedChainExpiry(certificate)
  chainExpiries.delete(key)
  chainExpiries.set(key, until)
  if (chainExpiries.size > MAX_CHAINS) chainExpiries.delete(chainExpiries.keys().next().value as string)
  return until
}

/**
 * When the chain a peer's leaf came with expires: on a full handshake (Node has the chain) read from it and
 * recorded; on a resumed session, what was recorded when the session was made here, else the leaf's own.
 */
export function chainExpiry (certificate: X509Certificate): number {
  if (certificate.issuerCertificate !== undefined) return recordChainExpiry(certificate)
  return Math.min(Date.parse(certificate.validTo), chainExpiries.get(certificate.raw.toString('latin1')) ?? Infinity)
}
