import { verdictCategory } from 'mtls-core/internal'
import { revocationCodes } from './errors.js'

/** Why a TLS handshake (or a connection right after it) was refused. */
export type HandshakeFailureReason =
  | 'no_certificate'
  | 'unknown_ca'
  | 'expired'
  | 'not_yet_valid'
  | 'revoked'
  | 'unsuitable_purpose'
  | 'ca_as_leaf'
  | 'bad_certificate'
  | 'protocol'
  | 'other'

export const FAILURE_REASONS: readonly HandshakeFailureReason[] = [
  'no_certificate', 'unknown_ca', 'expired', 'not_yet_valid', 'revoked', 'unsuitable_purpose', 'ca_as_leaf', 'bad_certificate', 'protocol', 'other'
]

/** The reason for a verification verdict under OpenSSL's name (`CERT_REVOKED`, ...): Node's, or mtls-core's ChainVerifier's. */
export function verdictReason (verdict: string): HandshakeFailureReason {
  // Not the certificate's fault: a change of trust this process could not judge closed the connection.
  if (verdict === 'ERR_MTLS_CHAIN_NOT_RECORDED') return 'other'
  // Nor is a revocation status that could not be learnt (failMode 'closed').
  if (verdict === revocationCodes.unknown) return 'other'
  const category = verdictCategory(verdict)
  // With CRLs loaded, OpenSSL looks for a CRL of the issuer before anything else: a missing one means an issuer we do not know.
  if (category === 'no_crl') return 'unknown_ca'
  // A server checks no host name: any other verdict is a certificate OpenSSL would not take.
  return category === null || category === 'hostname_mismatch' ? 'bad_certificate' : category
}

/** The reason for a `tlsClientError`, from the verification result Node left on the socket, else the error. */
export function failureReason (error: NodeJS.ErrnoException, authorizationError: unknown): HandshakeFailureReason {
  if (typeof authorizationError === 'string' && authorizationError !== '') return verdictReason(authorizationError)
  const code = error.code ?? ''
  if (code === 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE') return 'no_certificate'
  // A client offering no group the server does (a classical-only one at a requirePostQuantum server) is a protocol mismatch too.
  if (/PROTOCOL|VERSION|NO_SHARED_CIPHER|NO_SUITABLE_KEY_SHARE|NO_SHARED_GROUP|WRONG_VERSION|HTTP_REQUEST/.test(code)) return 'protocol'
  return 'other'
}

/** Counters of a server's handshakes; plain numbers, bumped from TLS events, never on the request path. */
export interface HandshakeStats {
  /** Handshakes that reached the application (full and resumed). */
  handshakes: number
  /** Of those, resumed sessions. */
  resumed: number
  /** Of those, in optional mode, connections without a verified client certificate. */
  unverified: number
  failures: Record<HandshakeFailureReason, number>
  reloads: { succeeded: number, failed: number }
}

export function emptyStats (): HandshakeStats {
  return {
    handshakes: 0,
    resumed: 0,
    unverified: 0,
    failures: Object.fromEntries(FAILURE_REASONS.map(reason => [reason, 0])) as Record<HandshakeFailureReason, number>,
    reloads: { succeeded: 0, failed: 0 }
  }
}
