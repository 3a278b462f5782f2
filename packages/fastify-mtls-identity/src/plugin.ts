import type { TLSSocket } from 'node:tls'
import type { FastifyInstance, FastifyPluginAsync, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { peerCertificate, toPeerIdentity, type PeerIdentity, type PeerIdentityOptions } from 'mtls-core'
import { codes, PEER_ERRORS } from './errors.js'
import { FORWARDED_FORMATS, FORWARDED_PRESETS, ForwardedHeaderError, forwardedCertificate, type ForwardedOptions, type ForwardedPreset } from './forwarded.js'
import { compileTrustedProxies, type TrustedProxiesOptions } from './trusted-proxies.js'

export interface FastifyMtlsIdentityOptions {
  /** Chooses `peerIdentity.id` (default: SPIFFE ID, else first DNS SAN, else CN, else fingerprint). */
  identify?: PeerIdentityOptions['identify']
  /** Enforce the X509-SVID rules on certificates with a SPIFFE ID. Default: `true`. */
  svid?: boolean
  /** Who may forward a client identity in a header. Without it, forwarded headers are always ignored. */
  trustedProxies?: TrustedProxiesOptions
  /** Which header and format carry the forwarded certificate: a preset name or `{ header, format }`. Needs `trustedProxies`. */
  forwarded?: ForwardedPreset | ForwardedOptions
  /** Longest forwarded header accepted, in characters. Default: 16,384. */
  maxHeaderLength?: number
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Who is calling: from the verified TLS client certificate, or from a trusted proxy's header; `null` when unknown. */
    readonly peerIdentity: PeerIdentity | null
    /** Why `peerIdentity` is null (a stable code), else `null`. */
    readonly peerCertificateError: string | null
  }
}

interface Resolved {
  identity: PeerIdentity | null
  error: string | null
}

interface ConnectionState extends Resolved {
  /** Whether the direct peer is a trusted proxy (computed with the state). */
  trustedProxy: boolean
}

const kResolved = Symbol('fastify-mtls-identity.resolved')

const fastifyMtlsIdentity: FastifyPluginAsync<FastifyMtlsIdentityOptions> = async (fastify: FastifyInstance, options: FastifyMtlsIdentityOptions) => {
  const identityOptions: PeerIdentityOptions = { svid: options.svid !== false }
  if (options.identify !== undefined) {
    if (typeof options.identify !== 'function') throw new codes.FST_MTLS_IDENTITY_INVALID_OPTION('identify must be a function (certificate identity) => string')
    identityOptions.identify = options.identify
  }
  const forwarded = resolveForwarded(options)
  const maxHeaderLength = options.maxHeaderLength ?? 16_384
  if (!Number.isInteger(maxHeaderLength) || maxHeaderLength <= 0) throw new codes.FST_MTLS_IDENTITY_INVALID_OPTION('maxHeaderLength must be a positive whole number')
  const isTrustedProxy = options.trustedProxies === undefined ? null : compileTrustedProxies(options.trustedProxies)
  if (forwarded !== null && isTrustedProxy === null) throw new codes.FST_MTLS_IDENTITY_INVALID_OPTION('forwarded needs trustedProxies: a header is only believed from a trusted proxy')

  // One entry per TLS connection: a keep-alive connection of 10,000 requests reads its certificate once.
  const connections = new WeakMap<object, ConnectionState>()

  const connectionState = (request: FastifyRequest): ConnectionState => {
    // HTTP/2 hands each stream a fresh socket proxy; the session is what lives as long as the connection.
    const session = (request.raw as { stream?: { session?: { socket: TLSSocket } } }).stream?.session
    const socket = (session?.socket ?? request.raw.socket) as TLSSocket | null
    if (socket === null || socket === undefined) return { identity: null, error: PEER_ERRORS.NOT_TLS, trustedProxy: false }
    const key: object = session ?? socket
    let state = connections.get(key)
    if (state === undefined) {
      state = fromSocket(socket, identityOptions)
      state.trustedProxy = isTrustedProxy?.(state.identity, socket.remoteAddress) ?? false
      connections.set(key, state)
    }
    return state
  }

  const resolve = (request: FastifyRequest): Resolved => {
    const cached = (request as unknown as Record<symbol, Resolved | null>)[kResolved]
    if (cached !== null && cached !== undefined) return cached
    const connection = connectionState(request)
    let resolved: Resolved = connection
    if (forwarded !== null) {
      const values = request.raw.headersDistinct[forwarded.header]
      if (connection.trustedProxy) {
        resolved = fromForwardedHeader(values, forwarded, maxHeaderLength, identityOptions)
      } else if (values !== undefined) {
        request.log.debug({ header: forwarded.header }, 'fastify-mtls-identity: forwarded identity header ignored: the direct peer is not a trusted proxy')
      }
    }
    ;(request as unknown as Record<symbol, Resolved>)[kResolved] = resolved
    return resolved
  }

  fastify.decorateRequest(kResolved as unknown as string, null)
  fastify.decorateRequest('peerIdentity', { getter (this: FastifyRequest) { return resolve(this).identity } })
  fastify.decorateRequest('peerCertificateError', { getter (this: FastifyRequest) { return resolve(this).error } })
}

function fromSocket (socket: TLSSocket, options: PeerIdentityOptions): ConnectionState {
  if (typeof socket.getPeerX509Certificate !== 'function') return { identity: null, error: PEER_ERRORS.NOT_TLS, trustedProxy: false }
  // Shared with fastify-mtls's own look at the connection, so Node builds the certificate object once.
  const certificate = peerCertificate(socket)
  if (certificate === null) return { identity: null, error: PEER_ERRORS.NO_PEER_CERTIFICATE, trustedProxy: false }
  // In optional mode a certificate that did not verify still arrives; OpenSSL's verdict says why.
  if (socket.authorized !== true) return { identity: null, error: String(socket.authorizationError ?? 'CERTIFICATE_NOT_VERIFIED'), trustedProxy: false }
  try {
    return { identity: toPeerIdentity(certificate, options), error: null, trustedProxy: false }
  } catch (err) {
    return { identity: null, error: (err as { code?: string }).code ?? PEER_ERRORS.CERTIFICATE_MALFORMED, trustedProxy: false }
  }
}

function fromForwardedHeader (values: string[] | undefined, forwarded: ForwardedOptions, maxLength: number, options: PeerIdentityOptions): Resolved {
  if (values === undefined || values.length === 0) return { identity: null, error: PEER_ERRORS.FORWARDED_HEADER_MISSING }
  // Two headers of one name are not merged: one of them did not come from the proxy.
  if (values.length > 1) return { identity: null, error: PEER_ERRORS.FORWARDED_HEADER_REPEATED }
  const value = values[0] as string
  if (value.length > maxLength) return { identity: null, error: PEER_ERRORS.FORWARDED_HEADER_TOO_LONG }
  try {
    return { identity: toPeerIdentity(forwardedCertificate(value, forwarded.format), { ...options, source: 'forwarded' }), error: null }
  } catch (err) {
    if (err instanceof ForwardedHeaderError) return { identity: null, error: err.code }
    const code = (err as { code?: string }).code
    return { identity: null, error: code !== undefined && code.startsWith('SVID_') ? code : PEER_ERRORS.FORWARDED_HEADER_MALFORMED }
  }
}

function resolveForwarded (options: FastifyMtlsIdentityOptions): ForwardedOptions | null {
  const { forwarded } = options
  if (forwarded === undefined) return null
  if (typeof forwarded === 'string') {
    const preset = Object.hasOwn(FORWARDED_PRESETS, forwarded) ? FORWARDED_PRESETS[forwarded] : undefined
    if (preset === undefined) throw new codes.FST_MTLS_IDENTITY_INVALID_OPTION(`forwarded must be one of ${Object.keys(FORWARDED_PRESETS).join(', ')} or { header, format }; got ${JSON.stringify(forwarded)}`)
    return preset
  }
  if (typeof forwarded !== 'object' || forwarded === null || typeof forwarded.header !== 'string' || forwarded.header === '') {
    throw new codes.FST_MTLS_IDENTITY_INVALID_OPTION('forwarded.header must be a header name')
  }
  if (!FORWARDED_FORMATS.includes(forwarded.format)) {
    throw new codes.FST_MTLS_IDENTITY_INVALID_OPTION(`forwarded.format must be one of ${FORWARDED_FORMATS.join(', ')}; got ${JSON.stringify(forwarded.format)}`)
  }
  return { header: forwarded.header.toLowerCase(), format: forwarded.format }
}

/** The plugin, wrapped once; `fastify-mtls-authz` declares it as a dependency by this name. */
export const plugin = fp(fastifyMtlsIdentity, { fastify: '5.x', name: 'fastify-mtls-identity' })
