import type { PeerIdentity } from 'mtls-core'

/** Why a certificate-bound token is refused: the error code and the reason for the audit line. */
export interface TokenRefusal {
  readonly code: 'FST_MTLS_AUTHZ_TOKEN_REQUIRED' | 'FST_MTLS_AUTHZ_TOKEN_UNBOUND' | 'FST_MTLS_AUTHZ_TOKEN_MISMATCH'
  readonly reason: string
}

// SHA-256 is 32 bytes: 43 characters of base64url without padding (RFC 8705 section 3.1).
const THUMBPRINT = /^[A-Za-z0-9_-]{43}$/

/**
 * RFC 8705 section 3: the verified token's `cnf['x5t#S256']` must be the thumbprint of the certificate the
 * peer presents. `claims` are the verified token's claims, or null/undefined when no token was verified.
 * Returns null when the token is bound to this certificate, else why not.
 */
export function checkBoundToken (claims: unknown, identity: PeerIdentity): TokenRefusal | null {
  if (typeof claims !== 'object' || claims === null) return { code: 'FST_MTLS_AUTHZ_TOKEN_REQUIRED', reason: 'no verified token claims' }
  // Own properties only: a polluted Object.prototype.cnf binds nothing.
  const cnf = Object.hasOwn(claims, 'cnf') ? (claims as { cnf?: unknown }).cnf : undefined
  if (typeof cnf !== 'object' || cnf === null) return { code: 'FST_MTLS_AUTHZ_TOKEN_UNBOUND', reason: 'token has no cnf claim' }
  const thumbprint = Object.hasOwn(cnf, 'x5t#S256') ? (cnf as Record<string, unknown>)['x5t#S256'] : undefined
  if (thumbprint === undefined) return { code: 'FST_MTLS_AUTHZ_TOKEN_UNBOUND', reason: 'token cnf has no x5t#S256' }
  if (typeof thumbprint !== 'string' || !THUMBPRINT.test(thumbprint)) return { code: 'FST_MTLS_AUTHZ_TOKEN_UNBOUND', reason: 'token cnf x5t#S256 is malformed' }
  if (thumbprint !== identity.thumbprintS256) return { code: 'FST_MTLS_AUTHZ_TOKEN_MISMATCH', reason: 'token is bound to another certificate' }
  return null
}
