import Fastify from 'fastify'
import { expectAssignable, expectError, expectNotAssignable, expectType } from 'tsd'
import type { PeerIdentity } from 'mtls-core'
import fastifyMtlsIdentityDefault, { fastifyMtlsIdentity, FORWARDED_PRESETS, PEER_ERRORS, PROXY_VERDICT_PRESETS, type ForwardedOptions, type PeerCertificateError, type ProxyVerdictOptions } from 'fastify-mtls-identity'

const app = Fastify()
expectType<typeof fastifyMtlsIdentity>(fastifyMtlsIdentityDefault)
await app.register(fastifyMtlsIdentity, {
  svid: true,
  identify: identity => identity.commonName ?? identity.fingerprint256,
  trustedProxies: { identities: ['spiffe://mesh/ns/ingress/**'], addresses: ['10.0.0.0/8'] },
  forwarded: 'envoy',
  maxHeaderLength: 8192
})
await app.register(fastifyMtlsIdentity, { trustedProxies: { addresses: ['::1'] }, forwarded: { header: 'x-client-cert', format: 'base64-der' } })
for (const preset of ['haproxy', 'caddy', 'traefik', 'aws-alb-verify', 'cloudflare', 'azure-app-service'] as const) {
  await app.register(fastifyMtlsIdentity, { trustedProxies: { addresses: ['10.0.0.1'] }, forwarded: preset })
}
await app.register(fastifyMtlsIdentity, { trustedProxies: { addresses: ['10.0.0.1'] }, forwarded: { header: 'x-forwarded-tls-client-cert', format: 'base64-der-url-escaped' } })
await app.register(fastifyMtlsIdentity, { trustedProxies: { addresses: ['10.0.0.1'] }, forwarded: 'nginx', proxyVerdict: 'nginx', verifyForwarded: false })
await app.register(fastifyMtlsIdentity, { trustedProxies: { addresses: ['10.0.0.1'] }, forwarded: 'haproxy', proxyVerdict: { header: 'x-ssl-client-verify', value: '0' } })
expectError(app.register(fastifyMtlsIdentity, { forwarded: 'apache' }))
expectError(app.register(fastifyMtlsIdentity, { forwarded: 'nginx', proxyVerdict: 'traefik' }))
expectError(app.register(fastifyMtlsIdentity, { forwarded: 'nginx', proxyVerdict: { header: 'x-ssl-client-verify' } }))
expectError(app.register(fastifyMtlsIdentity, { forwarded: 'nginx', proxyVerdict: { header: 'x-ssl-client-verify', value: 0 } }))
await app.register(fastifyMtlsIdentity, { openTelemetry: true })
expectError(app.register(fastifyMtlsIdentity, { forwarded: { header: 'x', format: 'json' } }))
expectError(app.register(fastifyMtlsIdentity, { identify: 'cn' }))
expectError(app.register(fastifyMtlsIdentity, { openTelemetry: 'on' }))

app.get('/', async request => {
  expectType<PeerIdentity | null>(request.peerIdentity)
  expectType<PeerCertificateError | null>(request.peerCertificateError)
  if (request.peerCertificateError !== null) {
    expectAssignable<string>(request.peerCertificateError)
    // A union of known codes: a misspelt code is not one of them.
    expectNotAssignable<typeof request.peerCertificateError>('CERT_HAS_EXPRIED')
  }
  expectType<string | undefined>(request.peerIdentity?.spiffeId?.trustDomain)
  expectType<string | undefined>(request.peerIdentity?.thumbprintS256)
  return request.peerIdentity?.id ?? 'anonymous'
})
app.get('/readonly', async request => {
  expectError(request.peerIdentity = null)
})

expectType<ForwardedOptions>(FORWARDED_PRESETS.envoy)
expectType<ForwardedOptions>(FORWARDED_PRESETS.traefik)
expectType<ProxyVerdictOptions>(PROXY_VERDICT_PRESETS.haproxy)
expectAssignable<PeerCertificateError>(PEER_ERRORS.ERR_MTLS_FORWARDED_VERDICT_FAILED)
expectType<'ERR_MTLS_FORWARDED_VERDICT_MISSING'>(PEER_ERRORS.ERR_MTLS_FORWARDED_VERDICT_MISSING)
expectType<'ERR_MTLS_NO_PEER_CERTIFICATE'>(PEER_ERRORS.ERR_MTLS_NO_PEER_CERTIFICATE)
expectAssignable<PeerCertificateError>('CERT_HAS_EXPIRED')
expectAssignable<PeerCertificateError>('ERR_MTLS_SVID_URI_SAN_COUNT')
expectAssignable<PeerCertificateError>(PEER_ERRORS.ERR_MTLS_FORWARDED_HEADER_MALFORMED)
expectNotAssignable<PeerCertificateError>('NO_PEER_CERTIFICATE')

// jwtSvid: any validator of the JwtSource shape (sync or async), an audience, an optional header name.
const validator = { validateJWTSVID: async (_token: string, _audience: string) => ({ spiffeId: 'spiffe://td/a', expiresAt: new Date(), claims: {} }) }
await app.register(fastifyMtlsIdentity, { jwtSvid: { source: validator, audience: 'spiffe://td/b' } })
await app.register(fastifyMtlsIdentity, { jwtSvid: { source: { validateJWTSVID: () => ({ spiffeId: 'spiffe://td/a', expiresAt: new Date() }) }, audience: 'x', header: 'x-jwt-svid' } })
expectError(app.register(fastifyMtlsIdentity, { jwtSvid: { source: validator } }))
expectError(app.register(fastifyMtlsIdentity, { jwtSvid: { source: {}, audience: 'x' } }))
expectError(app.register(fastifyMtlsIdentity, { jwtSvid: { source: validator, audience: ['x'] } }))
expectAssignable<PeerCertificateError>(PEER_ERRORS.ERR_MTLS_JWT_SVID_MISMATCH)
expectAssignable<PeerCertificateError>('ERR_MTLS_JWT_EXPIRED')
expectAssignable<PeerIdentity['source']>('jwt-svid')
