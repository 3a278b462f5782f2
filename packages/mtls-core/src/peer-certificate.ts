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
