import type { TLSSocket } from 'node:tls'
import type { ChainVerifier } from 'mtls-core'
import { connectionExpiry, peerCertificateDer, readCertificateFields } from 'mtls-core/internal'
import type { HandshakeFailureReason } from './handshake-stats.js'

/**
 * Why require mode refuses a connection OpenSSL let through, or `null`: a CA:TRUE leaf, and on a resumed
 * session (which OpenSSL does not verify again) a certificate or chain past its validity, or CRLs past their
 * next update. The certificate is read from the DER in the TLS session, so a connection costs no Node
 * certificate object, and a full handshake (verified by OpenSSL a moment ago) only records what a later
 * resumption will need.
 */
export function leafRefusal (socket: TLSSocket, trust: ChainVerifier, resumed: boolean): HandshakeFailureReason | null {
  let fields
  try {
    fields = readCertificateFields(peerCertificateDer(socket) as Buffer)
  } catch {
    return 'bad_certificate'
  }
  if (fields.isCa) return 'ca_as_leaf'
  const now = Date.now()
  const until = connectionExpiry(socket, trust)
  if (!resumed) return null
  if (until < now) return 'expired'
  if (fields.notBefore.getTime() > now) return 'not_yet_valid'
  if (trust.freshUntil < now) return 'other'
  return null
}
