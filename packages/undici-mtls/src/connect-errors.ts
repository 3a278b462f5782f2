import type { TLSSocket } from 'node:tls'
import { toPeerIdentity, type SpiffeId } from 'mtls-core'
import { HYBRID_GROUPS, isHybridGroup, verdictCategory, type VerdictCategory } from 'mtls-core/internal'
import { MtlsClientError, type MtlsClientErrorCode } from './errors.js'

// What OpenSSL's verdict on the server's certificate (mtls-core's categories) means to a user of this client;
// a category left out (a revoked certificate, a missing CRL) passes Node's error on as it is.
const SERVER_CERT_CODES: Readonly<Partial<Record<VerdictCategory, MtlsClientErrorCode>>> = {
  unknown_ca: 'ERR_MTLS_SERVER_CERT_UNTRUSTED',
  unsuitable_purpose: 'ERR_MTLS_SERVER_CERT_UNTRUSTED',
  expired: 'ERR_MTLS_SERVER_CERT_EXPIRED',
  not_yet_valid: 'ERR_MTLS_SERVER_CERT_EXPIRED',
  hostname_mismatch: 'ERR_MTLS_SERVER_HOSTNAME_MISMATCH'
}

/**
 * A clearer error for a failed TLS connection, or the error itself when there is nothing to add. Where the
 * verdict points to a fix, the message names it. `serverChecked`: the agent checks the server's identity (`server`);
 * `postQuantum`: it offers only hybrid post-quantum groups (`requirePostQuantum`).
 */
export function translateConnectError (error: Error & { code?: string, cert?: { raw?: unknown } }, origin: string, serverChecked = false, postQuantum = false): Error {
  // A server that shares none of the groups offered answers handshake_failure (alert 40), before any certificate.
  if (postQuantum && error.code?.endsWith('ALERT_HANDSHAKE_FAILURE') === true) {
    return notPostQuantumError(origin, `it answered the handshake with ${error.code}`, error)
  }
  const category = error.code === undefined ? null : verdictCategory(error.code)
  const code = category === null ? undefined : SERVER_CERT_CODES[category]
  if (code === undefined) return error
  const what = code === 'ERR_MTLS_SERVER_HOSTNAME_MISMATCH'
    ? 'the server certificate does not name the host'
    : code === 'ERR_MTLS_SERVER_CERT_EXPIRED' ? 'the server certificate is outside its validity' : 'the server certificate is not from a trusted CA'
  return new MtlsClientError(code, `${origin}: ${what} (${error.code}: ${error.message})${wayOut(error, serverChecked)}`, { cause: error })
}

/** What `TLSSocket#getEphemeralKeyInfo()` tells a client of its key exchange. */
export interface KeyInfo { readonly type?: string, readonly name?: string }

/**
 * ERR_MTLS_SERVER_NOT_POST_QUANTUM when a connection that required post-quantum key exchange shows another: a group
 * named that is not hybrid, or none at all. Node 22 names only classical groups and answers `{}` for the others, so
 * an unnamed group there is one of those offered, all of them hybrid.
 */
export function postQuantumProblem (keyInfo: KeyInfo | null, origin: string): MtlsClientError | null {
  if (keyInfo !== null && (keyInfo.name === undefined ? keyInfo.type === undefined : isHybridGroup(keyInfo.name))) return null
  return notPostQuantumError(origin, `the connection agreed ${keyInfo?.name ?? (keyInfo?.type === undefined ? 'no key exchange' : `an unnamed ${keyInfo.type} group`)}`)
}

/** ERR_MTLS_SERVER_NOT_POST_QUANTUM: the server agreed no hybrid post-quantum key exchange (`requirePostQuantum`). */
export function notPostQuantumError (origin: string, what: string, cause?: Error): MtlsClientError {
  return new MtlsClientError('ERR_MTLS_SERVER_NOT_POST_QUANTUM',
    `${origin}: the server agreed no post-quantum key exchange: requirePostQuantum offers only ${HYBRID_GROUPS.join(', ')} (those this OpenSSL has), and ${what}; ` +
    'most likely the server speaks only classical groups (X25519, P-256): it needs OpenSSL 3.5 or later (Node.js 22.20+, 24.5+, Go 1.24+) with those groups enabled',
    cause === undefined ? {} : { cause })
}

/**
 * A server that refuses our certificate closes the connection right after the handshake (Node servers say
 * nothing, others send an alert); undici would report only "other side closed". Ending the socket with our
 * own error first (these listeners run before undici's) gives the user the reason.
 */
export function watchServerRefusal (socket: TLSSocket): void {
  let alert: (Error & { code?: string }) | null = null
  socket.on('error', (error: Error & { code?: string }) => {
    if (error.code?.startsWith('ERR_SSL_') === true && error.code.includes('ALERT')) alert = error
  })
  socket.once('end', () => {
    if (socket.bytesRead > 0) return
    const reason = alert === null ? 'the server closed the connection right after the TLS handshake without a word: it most likely refused our client certificate (expired, revoked, or from a CA it does not trust)' : `the server refused our client certificate: ${alert.code ?? ''}`
    socket.destroy(new MtlsClientError('ERR_MTLS_CLIENT_CERT_REJECTED', reason, alert === null ? {} : { cause: alert }))
  })
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
