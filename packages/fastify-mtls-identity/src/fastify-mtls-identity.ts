import type { TLSSocket } from 'node:tls'
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import fp from 'fastify-plugin'
import type { FastifyMtls } from 'fastify-mtls'
import { toPeerIdentity, type ChainVerifier, type OpenSslVerifyCode, type PeerIdentity, type PeerIdentityOptions } from 'mtls-core'
import { isMtlsServer, isTrustDomainTls, peerCertificateDer, presentedCertificates, readCertificateFields, snapshotOptions, unknownOption } from 'mtls-core/internal'
import { codes, PEER_ERRORS, verdictOf, type PeerCertificateError } from './errors.js'
import { registerTelemetry } from './otel.js'
import { forwardedCertificate, forwardedErrorCode, forwardedVerifier, headerValues, resolveForwarded, resolveProxyVerdict, type ForwardedOptions, type ForwardedPreset, type ProxyVerdictOptions, type ProxyVerdictPreset } from './forwarded.js'
import { checkJwtSvidOptions, hasTokenHeader, jwtErrorCode, jwtSvidIdentity, tokenHeader, type CheckedJwtSvidOptions, type JwtSvidOptions } from './jwt-svid.js'
import { compileTrustedProxies, type TrustedProxiesOptions } from './trusted-proxies.js'
import { VerdictCache } from './verdict-cache.js'

type PemInput = string | Buffer

export interface FastifyMtlsIdentityOptions {
  /** Chooses `peerIdentity.id` (default: SPIFFE ID, else `dns:` first DNS SAN, else `cn:` CN, else `sha256:` fingerprint). */
  identify?: PeerIdentityOptions['identify']
  /** Enforce the X509-SVID rules on certificates with a SPIFFE ID. Default: `true`. */
  svid?: boolean
  /** Who may forward a client identity in a header. Without it, forwarded headers are always ignored. */
  trustedProxies?: TrustedProxiesOptions
  /** Which header and format carry the forwarded certificate: a preset name or `{ header, format }`. Needs `trustedProxies`. */
  forwarded?: ForwardedPreset | ForwardedOptions
  /**
   * The proxy's verdict on the client certificate, in a header of its own (`'nginx'`: `X-SSL-Client-Verify: SUCCESS`,
   * `'haproxy'`: `X-SSL-Client-Verify: 0`, or `{ header, value }`): the forwarded certificate is believed only when the
   * header is there once and is exactly `value`. Needs `forwarded`; with `verifyForwarded` left true, both must pass.
   */
  proxyVerdict?: ProxyVerdictPreset | ProxyVerdictOptions
  /** Longest forwarded header accepted, in characters. Default: 16,384. */
  maxHeaderLength?: number
  /**
   * Verify a forwarded certificate as the TLS layer verifies a direct one (chain to a trusted CA, CRLs,
   * validity, clientAuth). Default: `true`. `false` trusts the proxy to have verified it.
   */
  verifyForwarded?: boolean
  /**
   * The CAs (with any intermediates that issue client certificates: a forwarded header carries the leaf
   * alone) that forwarded certificates must chain to. Default: fastify-mtls's trust in force.
   */
  ca?: PemInput | PemInput[]
  /** CRLs for forwarded certificates, with `ca`. Default: fastify-mtls's. */
  crl?: PemInput | PemInput[]
  /**
   * OpenTelemetry: `mtls.peer.id` and `mtls.peer.source` on each recording request span, when @opentelemetry/api is
   * installed. Default: on when it is, silent when not; `true` also warns when it cannot be loaded; `false` turns it off.
   */
  openTelemetry?: boolean
  /**
   * An identity from a JWT-SVID bearer token, for hops that cannot carry a client certificate: `{ source, audience,
   * header? }`. A verified client certificate wins: a token beside it must name the same SPIFFE ID.
   */
  jwtSvid?: JwtSvidOptions
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Who is calling: from the verified TLS client certificate, or from a trusted proxy's header; `null` when unknown. */
    readonly peerIdentity: PeerIdentity | null
    /** Why `peerIdentity` is null (a stable code), else `null`. */
    readonly peerCertificateError: PeerCertificateError | null
  }
}

interface Resolved {
  identity: PeerIdentity | null
  error: PeerCertificateError | null
}

interface ConnectionState extends Resolved {
  /** Whether the direct peer is a trusted proxy (computed with the state). */
  trustedProxy: boolean
  /** Without fastify-mtls: until when the identity holds, the earliest expiry of the chain Node showed (leaf included), in ms. */
  until: number
  /** The socket fastify-mtls's record of the connection is found by (an HTTP/2 stream's socket proxy stands for its TLS socket). */
  socket: object | null
  /** Not kept for the connection: fastify-mtls's record did not take the certificate when asked. */
  askAgain?: boolean
}

const OPTIONS = ['identify', 'svid', 'trustedProxies', 'forwarded', 'proxyVerdict', 'maxHeaderLength', 'verifyForwarded', 'ca', 'crl', 'openTelemetry', 'jwtSvid']
// A verdict on a forwarded header is kept this long (never past the certificate's expiry), for this many headers.
const VERDICT_TTL_MS = 60_000
const VERDICT_CACHE_ENTRIES = 1000
const kResolved = Symbol('fastify-mtls-identity.resolved')
// The request's JWT-SVID, validated by the onRequest hook: a Resolved, NO_TOKEN, or null until the hook ran.
const kToken = Symbol('fastify-mtls-identity.jwt-svid')
// Without fastify-mtls, a connection outlives its certificate when it is kept alive, or resumed, past notAfter:
// OpenSSL does not verify a resumed session's certificate again.
const EXPIRED: Resolved = Object.freeze({ identity: null, error: 'CERT_HAS_EXPIRED' })

const fastifyMtlsIdentity: FastifyPluginAsync<FastifyMtlsIdentityOptions> = async (fastify: FastifyInstance, given: FastifyMtlsIdentityOptions) => {
  const options = snapshotOptions(given)
  const unknown = unknownOption(options, OPTIONS, 'fastify-mtls-identity')
  if (unknown !== null) throw new codes.FST_MTLS_IDENTITY_INVALID_OPTION(unknown)
  const identityOptions: PeerIdentityOptions = { svid: options.svid !== false }
  if (options.svid !== undefined && typeof options.svid !== 'boolean') throw new codes.FST_MTLS_IDENTITY_INVALID_OPTION('svid must be true or false')
  if (options.openTelemetry !== undefined && typeof options.openTelemetry !== 'boolean') throw new codes.FST_MTLS_IDENTITY_INVALID_OPTION('openTelemetry must be true or false')
  if (options.identify !== undefined) {
    if (typeof options.identify !== 'function') throw new codes.FST_MTLS_IDENTITY_INVALID_OPTION('identify must be a function (certificate identity) => string')
    identityOptions.identify = options.identify
  }
  const forwarded = resolveForwarded(options.forwarded)
  const proxyVerdict = resolveProxyVerdict(options.proxyVerdict, forwarded)
  const maxHeaderLength = options.maxHeaderLength ?? 16_384
  if (!Number.isInteger(maxHeaderLength) || maxHeaderLength <= 0) throw new codes.FST_MTLS_IDENTITY_INVALID_OPTION('maxHeaderLength must be a positive whole number')
  const isTrustedProxy = options.trustedProxies === undefined ? null : compileTrustedProxies(options.trustedProxies, message => { fastify.log.warn(`fastify-mtls-identity: ${message}`) })
  if (forwarded !== null && isTrustedProxy === null) throw new codes.FST_MTLS_IDENTITY_INVALID_OPTION('forwarded needs trustedProxies: a header is only believed from a trusted proxy')
  const verifyForwarded = options.verifyForwarded ?? true
  if (typeof verifyForwarded !== 'boolean') throw new codes.FST_MTLS_IDENTITY_INVALID_OPTION('verifyForwarded must be true or false')
  const ownVerifier = forwardedVerifier(options, forwarded !== null && verifyForwarded)
  const jwtSvid = checkJwtSvidOptions(options.jwtSvid)

  // fastify-mtls, where it is registered: the one owner of each connection's verdict (OpenSSL's at the handshake, and
  // what it withdrew since: a change of trust, a trust domain), read through its typed API. Found at ready(), so the
  // two plugins may be registered in either order.
  let owner: FastifyMtls | null = null
  fastify.addHook('onReady', async () => {
    owner = fastify.hasPlugin('fastify-mtls') ? (fastify as FastifyInstance & { mtls: FastifyMtls }).mtls : null
    // Trust kept by SPIFFE trust domain (loadServerTls with an x509Source): OpenSSL takes every bundle for every trust
    // domain, and only fastify-mtls holds a peer to its own. Without it here, a federated CA could speak for us.
    if (owner === null && isTrustDomainTls(fastify.server)) {
      throw new codes.FST_MTLS_IDENTITY_INVALID_OPTION('this server trusts SPIFFE bundles by trust domain (loadServerTls with x509Source or trustDomains): register fastify-mtls where this plugin can see it (it holds each peer to its own trust domain, and applies the rotations)')
    }
    // fastify-mtls serves this server from a context this plugin cannot see: its verdicts (a certificate a new CRL
    // revoked, a trust domain refused) would go unread, and OpenSSL's verdict at the handshake believed instead.
    if (owner === null && isMtlsServer(fastify.server)) {
      throw new codes.FST_MTLS_IDENTITY_INVALID_OPTION('fastify-mtls serves this server from an encapsulated context this plugin cannot see: register it where fastify-mtls-identity can see it (at the root, or above this plugin), or it would not read fastify-mtls\'s verdict on each connection')
    }
    // Forwarded certificates are verified against fastify-mtls's trust unless `ca` names another.
    if (owner === null && forwarded !== null && verifyForwarded && ownVerifier === null) {
      throw new codes.FST_MTLS_IDENTITY_INVALID_OPTION('forwarded certificates are verified against the server\'s trust: register fastify-mtls, give ca (and crl), or set verifyForwarded: false if the proxy verifies them')
    }
  })
  const verifierInForce = (): ChainVerifier | null => verifyForwarded ? ownVerifier ?? (owner as FastifyMtls).verifier() : null

  // One entry per TLS connection: a keep-alive connection of 10,000 requests reads its certificate once.
  const connections = new WeakMap<object, ConnectionState>()

  const connectionState = (request: FastifyRequest): ConnectionState => {
    // HTTP/2 hands each stream a fresh socket proxy; the session is what lives as long as the connection.
    const session = (request.raw as { stream?: { session?: { socket: TLSSocket } } }).stream?.session
    const socket = (session?.socket ?? request.raw.socket) as TLSSocket | null
    if (socket === null || socket === undefined) return notTls()
    const key: object = session ?? socket
    let state = connections.get(key)
    if (state === undefined) {
      state = fromSocket(socket, identityOptions, owner)
      state.trustedProxy = isTrustedProxy?.(state.identity, socket.remoteAddress) ?? false
      // fastify-mtls's verdict may change (the CRLs past their next update, then renewed): asked again next time.
      if (!state.askAgain) connections.set(key, state)
    }
    return state
  }

  // The identity of a connection holds while its verdict does: fastify-mtls's record, brought up to date on each
  // request (a CRL revoking it, a CA removed, its chain or the trust's CRLs expired); without fastify-mtls, while its
  // chain is current. A connection kept open, an HTTP/2 session above all, outlives no change of trust.
  const stillValid = (connection: ConnectionState): Resolved => {
    if (owner === null) return Date.now() > connection.until ? EXPIRED : connection
    const record = owner.connection(connection.socket)
    if (record === null) return UNSEEN
    return record.verified ? connection : { identity: null, error: (record.refusal ?? PEER_ERRORS.ERR_MTLS_CERTIFICATE_NOT_VERIFIED) as PeerCertificateError }
  }

  // Before the certificate header is believed: the proxy said it verified this client, once and exactly so.
  const verdictRefusal = (request: FastifyRequest): Resolved | null => {
    if (proxyVerdict === null) return null
    const values = headerValues(request.raw, proxyVerdict.header)
    if (values.length === 1 && values[0] === proxyVerdict.value) return null
    return values.length === 0 ? VERDICT_MISSING : values.length > 1 ? VERDICT_REPEATED : VERDICT_FAILED
  }

  const verdicts = new VerdictCache<Resolved>(VERDICT_CACHE_ENTRIES)
  const fromForwardedHeader = (values: string[]): Resolved => {
    if (values.length === 0) return { identity: null, error: PEER_ERRORS.ERR_MTLS_FORWARDED_HEADER_MISSING }
    // Two headers of one name are not merged: one of them did not come from the proxy.
    if (values.length > 1) return { identity: null, error: PEER_ERRORS.ERR_MTLS_FORWARDED_HEADER_REPEATED }
    const value = values[0] as string
    if (value.length > maxHeaderLength) return { identity: null, error: PEER_ERRORS.ERR_MTLS_FORWARDED_HEADER_TOO_LONG }
    const verifier = verifierInForce()
    const now = Date.now()
    const cached = verdicts.get(value, verifier, now)
    if (cached !== undefined) return cached
    let resolved: Resolved
    let until = now + VERDICT_TTL_MS
    try {
      const der = forwardedCertificate(value, (forwarded as ForwardedOptions).format)
      // The verdict holds until the chain or a CRL it was checked against expires, the leaf included.
      const validUntil = verifier?.verify(der, { purpose: 'client', now }) ?? Infinity
      const identity = toPeerIdentity(der, { ...identityOptions, source: 'forwarded' })
      until = Math.min(until, validUntil, identity.notAfter.getTime())
      resolved = { identity, error: null }
    } catch (err) {
      resolved = { identity: null, error: forwardedErrorCode(err) }
    }
    verdicts.set(value, verifier, resolved, until)
    return resolved
  }

  const resolve = (request: FastifyRequest): Resolved => {
    const cached = (request as unknown as Record<symbol, Resolved | null>)[kResolved]
    if (cached !== null && cached !== undefined) return cached
    const resolved = jwtSvid === null ? fromCertificate(request) : withToken(request, jwtSvid)
    // Not kept while the token waits for validation: read again once the hook has judged it.
    if (resolved !== TOKEN_PENDING) (request as unknown as Record<symbol, Resolved>)[kResolved] = resolved
    return resolved
  }

  // The certificate's verdict (direct or forwarded) and the request's JWT-SVID, together: see combine().
  const withToken = (request: FastifyRequest, options: CheckedJwtSvidOptions): Resolved => {
    let token = (request as unknown as Record<symbol, Resolved | null>)[kToken] as Resolved | null
    // Read before the hook judged the token (an earlier onRequest hook): no identity yet, rather than the certificate's.
    if (token === null) {
      if (hasTokenHeader(request.headers, options)) return TOKEN_PENDING
      token = NO_TOKEN
    }
    return combine(fromCertificate(request), token)
  }

  const fromCertificate = (request: FastifyRequest): Resolved => {
    const connection = connectionState(request)
    // A proxy whose own identity ended (expired, revoked by a new trust) forwards nothing either.
    let resolved: Resolved = connection.identity === null ? connection : stillValid(connection)
    if (resolved === connection && forwarded !== null) {
      if (connection.trustedProxy) {
        resolved = verdictRefusal(request) ?? fromForwardedHeader(headerValues(request.raw, forwarded.header))
      } else if (request.headers[forwarded.header] !== undefined) {
        request.log.debug({ header: forwarded.header }, 'fastify-mtls-identity: forwarded identity header ignored: the direct peer is not a trusted proxy')
      }
    }
    return resolved
  }

  fastify.decorateRequest(kResolved as unknown as string, null)
  if (jwtSvid !== null) {
    fastify.decorateRequest(kToken as unknown as string, null)
    // Validation may wait for the source (its bundles), so it runs here, before routes and fastify-mtls-authz's
    // route hooks; a request without the header pays one property read.
    fastify.addHook('onRequest', function mtlsIdentityJwtSvid (request: FastifyRequest, _reply: FastifyReply, done: HookHandlerDoneFunction) {
      if (!hasTokenHeader(request.headers, jwtSvid)) {
        done()
        return
      }
      validateToken(request, jwtSvid).then(token => {
        ;(request as unknown as Record<symbol, Resolved>)[kToken] = token
        done()
      })
    })
  }
  const validateToken = async (request: FastifyRequest, options: CheckedJwtSvidOptions): Promise<Resolved> => {
    try {
      const header = tokenHeader(request.raw, options, maxHeaderLength)
      if (header.token === null) return header.error === null ? NO_TOKEN : { identity: null, error: header.error }
      const validated = await options.source.validateJWTSVID(header.token, options.audience)
      return { identity: jwtSvidIdentity(validated), error: null }
    } catch (err) {
      const error = jwtErrorCode(err)
      // A refusal is the caller's doing; a validator that cannot judge (closed, no bundles yet) is ours to see.
      if (error === PEER_ERRORS.ERR_MTLS_JWT_SVID_UNVERIFIED) request.log.warn({ err }, 'fastify-mtls-identity: the JWT-SVID could not be validated')
      else request.log.debug({ code: error }, 'fastify-mtls-identity: JWT-SVID refused')
      return { identity: null, error }
    }
  }
  fastify.decorateRequest('peerIdentity', { getter (this: FastifyRequest) { return resolve(this).identity } })
  fastify.decorateRequest('peerCertificateError', { getter (this: FastifyRequest) { return resolve(this).error } })
  await registerTelemetry(fastify, options.openTelemetry, request => resolve(request).identity)
}

const NO_TOKEN: Resolved = Object.freeze({ identity: null, error: null })
const TOKEN_PENDING: Resolved = Object.freeze({ identity: null, error: PEER_ERRORS.ERR_MTLS_JWT_SVID_PENDING })
const TOKEN_MISSING: Resolved = Object.freeze({ identity: null, error: PEER_ERRORS.ERR_MTLS_JWT_SVID_MISSING })
const TOKEN_MISMATCH: Resolved = Object.freeze({ identity: null, error: PEER_ERRORS.ERR_MTLS_JWT_SVID_MISMATCH })
// No certificate speaks for the caller: none was sent, no TLS (a hop that terminated it), or a trusted proxy forwarded none.
const NO_CERTIFICATE = new Set<PeerCertificateError | null>([PEER_ERRORS.ERR_MTLS_NO_PEER_CERTIFICATE, PEER_ERRORS.ERR_MTLS_NOT_TLS, PEER_ERRORS.ERR_MTLS_FORWARDED_HEADER_MISSING])

/**
 * A verified certificate wins; a token beside it must name the same SPIFFE ID (else no identity, ERR_MTLS_JWT_SVID_MISMATCH).
 * A token stands alone only where no certificate was offered: a certificate that failed keeps its refusal, and a token
 * that failed is never ignored, whatever the certificate says.
 */
function combine (certificate: Resolved, token: Resolved): Resolved {
  if (token === NO_TOKEN) {
    return certificate.identity === null && certificate.error !== PEER_ERRORS.ERR_MTLS_FORWARDED_HEADER_MISSING && NO_CERTIFICATE.has(certificate.error) ? TOKEN_MISSING : certificate
  }
  if (token.identity === null) return token
  if (certificate.identity !== null) return certificate.identity.spiffeId?.toString() === token.identity.id ? certificate : TOKEN_MISMATCH
  return NO_CERTIFICATE.has(certificate.error) ? token : certificate
}

function notTls (): ConnectionState {
  return { identity: null, error: PEER_ERRORS.ERR_MTLS_NOT_TLS, trustedProxy: false, until: Infinity, socket: null }
}

const VERDICT_MISSING: Resolved = Object.freeze({ identity: null, error: PEER_ERRORS.ERR_MTLS_FORWARDED_VERDICT_MISSING })
const VERDICT_REPEATED: Resolved = Object.freeze({ identity: null, error: PEER_ERRORS.ERR_MTLS_FORWARDED_VERDICT_REPEATED })
const VERDICT_FAILED: Resolved = Object.freeze({ identity: null, error: PEER_ERRORS.ERR_MTLS_FORWARDED_VERDICT_FAILED })

// A connection fastify-mtls did not see complete its handshake (it cannot happen once the server listens): not taken.
const UNSEEN: Resolved = Object.freeze({ identity: null, error: PEER_ERRORS.ERR_MTLS_CERTIFICATE_NOT_VERIFIED })

function fromSocket (socket: TLSSocket, options: PeerIdentityOptions, owner: FastifyMtls | null): ConnectionState {
  if (typeof socket.getPeerCertificate !== 'function') return notTls()
  const state: ConnectionState = { identity: null, error: null, trustedProxy: false, until: Infinity, socket }
  const record = owner === null ? undefined : owner.connection(socket)
  if (record === null) return { ...state, ...UNSEEN }
  // Read from the TLS session once per connection (fastify-mtls's record holds it): no Node certificate object is
  // built (on Node 20 that alone costs about 200 µs a connection).
  const der = record === undefined ? peerCertificateDer(socket) : record.certificate
  if (der === null) return { ...state, error: PEER_ERRORS.ERR_MTLS_NO_PEER_CERTIFICATE }
  // In optional mode a certificate that did not verify still arrives; OpenSSL's verdict (or fastify-mtls's) says why.
  if (record !== undefined && !record.verified) return { ...state, error: (record.refusal ?? PEER_ERRORS.ERR_MTLS_CERTIFICATE_NOT_VERIFIED) as PeerCertificateError, askAgain: true }
  if (record === undefined && socket.authorized !== true) return { ...state, error: (socket.authorizationError as unknown as OpenSslVerifyCode | undefined) ?? PEER_ERRORS.ERR_MTLS_CERTIFICATE_NOT_VERIFIED }
  try {
    const identity = toPeerIdentity(der, options)
    return { ...state, identity, until: record === undefined ? presentedExpiry(socket, identity.notAfter.getTime()) : Infinity }
  } catch (err) {
    return { ...state, error: verdictOf(err, PEER_ERRORS.ERR_MTLS_CERTIFICATE_MALFORMED) }
  }
}

// The earliest expiry of what Node shows of the chain (a full handshake's, once), the leaf's included.
function presentedExpiry (socket: TLSSocket, leafUntil: number): number {
  let until = leafUntil
  for (const der of presentedCertificates(socket).slice(1)) {
    try {
      until = Math.min(until, readCertificateFields(der).notAfter.getTime())
    } catch {} // OpenSSL verified the chain; a certificate the DER walker cannot read does not shorten it
  }
  return until
}

/** The plugin, wrapped once; `fastify-mtls-authz` declares it as a dependency by this name. */
export const plugin = fp(fastifyMtlsIdentity, { fastify: '5.x', name: 'fastify-mtls-identity' })
