import { plugin } from './plugin.js'

export { codes, PEER_ERRORS, type PeerCertificateError } from './errors.js'
export { FORWARDED_FORMATS, FORWARDED_PRESETS, type ForwardedFormat, type ForwardedOptions, type ForwardedPreset } from './forwarded.js'
export type { FastifyMtlsIdentityOptions } from './plugin.js'
export type { TrustedProxiesOptions } from './trusted-proxies.js'
export type { PeerIdentity } from 'mtls-core'

export { plugin as fastifyMtlsIdentity }
export default plugin
