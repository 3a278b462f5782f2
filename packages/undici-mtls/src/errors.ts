import { toPeerIdentity, type SpiffeId } from 'mtls-core'

export type MtlsClientErrorCode =
  | 'ERR_MTLS_CLIENT_INVALID_OPTION'
  | 'ERR_MTLS_SERVER_UNAUTHORIZED'
  | 'ERR_MTLS_SERVER_CERT_UNTRUSTED'
  | 'ERR_MTLS_SERVER_CERT_EXPIRED'
  | 'ERR_MTLS_SERVER_HOSTNAME_MISMATCH'
  | 'ERR_MTLS_CLIENT_CERT_REJECTED'

const kMtlsClientError = Symbol.for('undici-mtls.error')

/** Every error undici-mtls raises: a stable `code` and a message with what was expected and what was found. */
export class MtlsClientError extends Error {
  readonly code: MtlsClientErrorCode

  constructor (code: MtlsClientErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'MtlsClientError'
    this.code = code
  }

  get [kMtlsClientError] (): true { return true }

  // Survives two copies of the package, as undici's own errors do.
  static override [Symbol.hasInstance] (value: unknown): boolean {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[kMtlsClientError] === true
  }
}

/** The server's certificate verified, but it is not the server this client is allowed to talk to. */
export class ServerUnauthorizedError extends MtlsClientError {
  readonly expected: string
  readonly actual: string

  constructor (expected: string, actual: string, reason?: string) {
    super('ERR_MTLS_SERVER_UNAUTHORIZED', `server not authorized: expected ${expected}, got ${JSON.stringify(actual)}${reason === undefined ? '' : ` (${reason})`}`)
    this.name = 'ServerUnauthorizedError'
    this.expected = expected
    this.actual = actual
  }
}

// OpenSSL's verdicts on the server's certificate, by what they mean to a user.
const SERVER_CERT_CODES: Record<string, MtlsClientErrorCode> = {
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'ERR_MTLS_SERVER_CERT_UNTRUSTED',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'ERR_MTLS_SERVER_CERT_UNTRUSTED',
  UNABLE_TO_GET_ISSUER_CERT: 'ERR_MTLS_SERVER_CERT_UNTRUSTED',
  SELF_SIGNED_CERT_IN_CHAIN: 'ERR_MTLS_SERVER_CERT_UNTRUSTED',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'ERR_MTLS_SERVER_CERT_UNTRUSTED',
  INVALID_PURPOSE: 'ERR_MTLS_SERVER_CERT_UNTRUSTED',
  CERT_HAS_EXPIRED: 'ERR_MTLS_SERVER_CERT_EXPIRED',
  CERT_NOT_YET_VALID: 'ERR_MTLS_SERVER_CERT_EXPIRED',
  ERR_TLS_CERT_ALTNAME_INVALID: 'ERR_MTLS_SERVER_HOSTNAME_MISMATCH'
}

/**
 * A clearer error for a failed TLS connection, or the error itself when there is nothing to add. Where the
 * verdict points to a fix, the message names it. `serverChecked`: the agent checks the server's identity (`server`).
 */
export function translateConnectError (error: Error & { code?: string, cert?: { raw?: unknown } }, origin: string, serverChecked = false): Error {
  const code = error.code === undefined ? undefined : SERVER_CERT_CODES[error.code]
  if (code === undefined) return error
  const what = code === 'ERR_MTLS_SERVER_HOSTNAME_MISMATCH'
    ? 'the server certificate does not name the host'
    : code === 'ERR_MTLS_SERVER_CERT_EXPIRED' ? 'the server certificate is outside its validity' : 'the server certificate is not from a trusted CA'
  return new MtlsClientError(code, `${origin}: ${what} (${error.code}: ${error.message})${wayOut(error, serverChecked)}`, { cause: error })
}

function wayOut (error: Error & { code?: string, cert?: { raw?: unknown } }, serverChecked: boolean): string {
  if (error.code === 'UNABLE_TO_VERIFY_LEAF_SIGNATURE') {
    // OpenSSL's verdict when the chain it could build is the server's certificate alone (a whole chain of
    // another CA is UNABLE_TO_GET_ISSUER_CERT_LOCALLY).
    return '; the server sent its certificate without the CA certificate that issued it, and no CA in our caFile issued it: most likely the server presents its leaf alone; ' +
      'configure the server with its chain file, the leaf followed by the intermediate (mtls-pki writes it as NAME-chain.pem; with cert-manager, tls.crt holds the chain), ' +
      'or, if its issuer is a CA we should trust, add that CA to caFile'
  }
  if (error.code !== 'ERR_TLS_CERT_ALTNAME_INVALID') return ''
  if (serverChecked) return "; name the host in the server's certificate (a DNS or IP SAN), or set verifyHostname: false: the server option you gave then checks who the server is instead of the host name"
  // The chain verified (the name is checked only then), but the server that answered may not be the one meant
  // (DNS sent us elsewhere): its SPIFFE ID is shown, never offered as the value to pin.
  const spiffeId = spiffeIdOf(error.cert?.raw)
  const server = spiffeId === null
    ? "server: the server's identity (its SPIFFE ID, a dns: name or a sha256: fingerprint pin)"
    : `server: 'spiffe://${spiffeId.trustDomain}/…', the SPIFFE ID of the service you mean to call (this server presented ${spiffeId.toString()})`
  return `; name the host in the server's certificate (a DNS or IP SAN), or set verifyHostname: false together with ${server}, to check who the server is instead of the host name`
}

function spiffeIdOf (der: unknown): SpiffeId | null {
  if (!(der instanceof Uint8Array)) return null
  try {
    return toPeerIdentity(der).spiffeId
  } catch {
    return null // a certificate that is no identity (a CA, a broken SVID) suggests nothing
  }
}
