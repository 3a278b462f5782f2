import { plugin } from './fastify-mtls-identity.js'

export { codes, PEER_ERRORS, type PeerCertificateError } from './errors.js'
export { FORWARDED_FORMATS, FORWARDED_PRESETS, PROXY_VERDICT_PRESETS, type ForwardedFormat, type ForwardedOptions, type ForwardedPreset, type ProxyVerdictOptions, type ProxyVerdictPreset } from './forwarded.js'
export type { FastifyMtlsIdentityOptions } from './fastify-mtls-identity.js'
export type { JwtSvidOptions, JwtSvidValidator, ValidatedJwtSvidLike } from './jwt-svid.js'
export type { TrustedProxiesOptions } from './trusted-proxies.js'
export type { PeerIdentity } from 'mtls-core'

export { plugin as fastifyMtlsIdentity }
export default plugin
