import type { X509Certificate } from 'node:crypto'
import type { TLSSocket } from 'node:tls'
import { tlv } from './der.js'

// OpenSSL's default verify depth: a chain it verified may be as long.
const MAX_CHAIN = 100

/**
 * The peer's certificate as DER, copied out of the TLS session Node holds for the connection (`getSession()`:
 * OpenSSL keeps the certificate's bytes, and encoding a session copies them) instead of through a Node certificate
 * object, which on OpenSSL 3.0 decodes the certificate again, about 200 µs of server CPU a connection on Node 20.
 * Falls back to `getPeerCertificate()` when the session says nothing. `null` when the peer sent no certificate.
 * Works on resumed sessions too: the session keeps the peer's leaf. Callers keep the answer (once per connection).
 */
export function peerCertificateDer (socket: Pick<TLSSocket, 'getPeerCertificate' | 'getSession'>): Buffer | null {
  const session = socket.getSession()
  const fromSession = session === undefined ? undefined : sessionPeer(session)
  if (fromSession !== undefined) return fromSession
  const raw = socket.getPeerCertificate(false)?.raw
  return Buffer.isBuffer(raw) ? raw : null
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
 * The certificates of a connection's peer as Node shows them (DER, the peer's own first, then what it sent above
 * it, then, on a server, the CAs Node found in the trust it was verified against), read without taking them away:
 * Node 20's `getPeerX509Certificate()` hands the chain out once and shows the leaf alone afterwards. A resumed
 * session shows the leaf alone. Costs a decoding of each certificate (about 100 µs each on Node 20): read it only
 * when something needs it. Empty when the peer sent no certificate.
 */
export function presentedCertificates (socket: Pick<TLSSocket, 'getPeerCertificate'>): Buffer[] {
  const certificates: Buffer[] = []
  let certificate: { raw?: unknown, issuerCertificate?: unknown } | undefined = socket.getPeerCertificate(true)
  // A self-signed top certificate is its own issuer: the walk ends there.
  while (certificate !== undefined && Buffer.isBuffer(certificate.raw) && certificates.length <= MAX_CHAIN) {
    const raw = certificate.raw
    if (certificates.some(seen => seen.equals(raw))) break
    certificates.push(raw)
    certificate = certificate.issuerCertificate as typeof certificate
  }
  return certificates
}

/**
 * The certificates above a Node certificate object's leaf (DER, nearest first), and the earliest expiry of them all,
 * leaf included: what a client's peer (the server) sent with its certificate.
 */
export function presentedChain (certificate: X509Certificate): { intermediates: Buffer[], until: number } {
  const intermediates: Buffer[] = []
  let until = Date.parse(certificate.validTo)
  let previous = certificate.raw
  for (let issuer = certificate.issuerCertificate; issuer !== undefined && intermediates.length < MAX_CHAIN; issuer = issuer.issuerCertificate) {
    const raw = issuer.raw
    if (raw.equals(previous)) break
    intermediates.push(raw)
    until = Math.min(until, Date.parse(issuer.validTo))
    previous = raw
  }
  return { intermediates, until }
}
