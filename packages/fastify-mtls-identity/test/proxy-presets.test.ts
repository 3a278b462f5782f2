// One test per row of the README's proxy table: the header each proxy writes, spelt as its documentation says it
// writes it, read through the preset named after the proxy by a real server, from a connection that presents the
// proxy's own certificate. Then the proxies' verdict headers (proxyVerdict).
import t from 'tap'
import { createTestPki, type IssuedCertificate } from 'mtls-pki'
import { readPemBlocks } from 'mtls-core/internal'
import { FORWARDED_PRESETS, PEER_ERRORS, PROXY_VERDICT_PRESETS, type ForwardedPreset } from '../src/index.js'
import { agentFor, envoyElement, opensslPem, startServer, who } from './helpers.js'

const pki = await createTestPki()
const proxy = await pki.intermediate.issue({ usage: 'client', spiffeId: 'spiffe://mycompany.com/infra/proxy' })
const trustedProxies = { identities: ['spiffe://mycompany.com/infra/proxy'] }
const orderServiceId = 'spiffe://mycompany.com/production/order-service'
const der = (cert: IssuedCertificate): Buffer => readPemBlocks(cert.certificate)[0]!.der

/** nginx's $ssl_client_escaped_cert: the PEM, URL-escaped as a URI component. */
const nginxEscaped = (cert: IssuedCertificate): string => encodeURIComponent(opensslPem(der(cert)))
/** AWS ALB: URL-encoded PEM "with +=/ as safe characters". */
const albEncoded = (pem: string): string => encodeURIComponent(pem).replace(/%2B/g, '+').replace(/%3D/g, '=').replace(/%2F/g, '/')
/** Go's url.QueryEscape of base64 text (Traefik before 2.9.4): `+`, `/` and `=` escaped, upper-case hex. */
const queryEscape = (base64: string): string => base64.replace(/\+/g, '%2B').replace(/\//g, '%2F').replace(/=/g, '%3D')

// [proxy as the README's table names it, preset, header as the proxy spells it, value as it writes it]
const rows: Array<[string, ForwardedPreset, string, (cert: IssuedCertificate) => string]> = [
  ['nginx ($ssl_client_escaped_cert)', 'nginx', 'X-SSL-Client-Cert', nginxEscaped],
  ['HAProxy (%[ssl_c_der,base64])', 'haproxy', 'X-SSL-Client-Cert', cert => der(cert).toString('base64')],
  ['HAProxy, RFC 9440 (:%[ssl_c_der,base64]:)', 'rfc9440', 'Client-Cert', cert => `:${der(cert).toString('base64')}:`],
  ['Caddy ({http.request.tls.client.certificate_der_base64})', 'caddy', 'X-SSL-Client-Cert', cert => der(cert).toString('base64')],
  ['Envoy (SANITIZE_SET, cert + uri)', 'envoy', 'x-forwarded-client-cert', cert => envoyElement(['spiffe://mycompany.com/infra/proxy'], cert, [orderServiceId])],
  ['Traefik 2.9.4 and later (passTLSClientCert pem: the PEM body, delimiters and line breaks removed)', 'traefik', 'X-Forwarded-Tls-Client-Cert', cert => der(cert).toString('base64')],
  ['Traefik before 2.9.4 (the same, URL-escaped)', 'traefik', 'X-Forwarded-Tls-Client-Cert', cert => queryEscape(der(cert).toString('base64'))],
  ['AWS ALB, passthrough mode (a client sending its leaf alone)', 'aws-alb', 'X-Amzn-Mtls-Clientcert', cert => albEncoded(opensslPem(der(cert)))],
  ['AWS ALB, verify mode', 'aws-alb-verify', 'X-Amzn-Mtls-Clientcert-Leaf', cert => albEncoded(opensslPem(der(cert)))],
  ['Cloudflare (Cf-Client-Cert-Der-Base64)', 'cloudflare', 'Cf-Client-Cert-Der-Base64', cert => der(cert).toString('base64')],
  ['Cloudflare, RFC 9440 (Client-Cert)', 'rfc9440', 'Client-Cert', cert => `:${der(cert).toString('base64')}:`],
  ['Azure App Service (X-ARR-ClientCert)', 'azure-app-service', 'X-ARR-ClientCert', cert => der(cert).toString('base64')]
]

t.test('each proxy\'s header, as the proxy writes it, names the client behind it', async t => {
  for (const [proxyName, preset, header, write] of rows) {
    t.equal(FORWARDED_PRESETS[preset].header, header.toLowerCase(), `${proxyName}: the preset reads the header the proxy writes`)
    const { url } = await startServer(t, pki, { trustedProxies, forwarded: preset })
    const viaProxy = agentFor(t, pki, proxy)
    t.same((await who(url, viaProxy, [header, write(pki.orderService)])).body, { id: orderServiceId, source: 'forwarded', error: null }, proxyName)
    // The same header from a client that is not the proxy is ignored: it stays itself.
    t.same((await who(url, agentFor(t, pki, pki.inventoryService), [header, write(pki.orderService)])).body.source, 'tls', `${proxyName}: not believed from anyone else`)
  }
})

t.test('a chain where one certificate belongs is refused, not resolved by picking one; ALB\'s passthrough header is not its verify-mode one', async t => {
  const traefik = await startServer(t, pki, { trustedProxies, forwarded: 'traefik' })
  const alb = await startServer(t, pki, { trustedProxies, forwarded: 'aws-alb' })
  const viaProxy = agentFor(t, pki, proxy)
  const malformed = { id: null, source: null, error: PEER_ERRORS.ERR_MTLS_FORWARDED_HEADER_MALFORMED }
  // Traefik joins a chain's certificates with commas; ALB passthrough sends every PEM block the client sent.
  const traefikChain = `${der(pki.orderService).toString('base64')},${pki.intermediate.certificate.split('\n').filter(line => !line.startsWith('-----')).join('')}`
  t.same((await who(traefik.url, viaProxy, ['X-Forwarded-Tls-Client-Cert', traefikChain])).body, malformed, 'Traefik: leaf,intermediate')
  t.same((await who(alb.url, viaProxy, ['X-Amzn-Mtls-Clientcert', albEncoded(pki.orderService.chain)])).body, malformed, 'ALB passthrough: leaf and intermediate')
  // The verify-mode preset reads only the header ALB writes after verifying: a listener switched to passthrough gives no identity.
  const albVerify = await startServer(t, pki, { trustedProxies, forwarded: 'aws-alb-verify' })
  t.same((await who(albVerify.url, viaProxy, ['X-Amzn-Mtls-Clientcert', albEncoded(opensslPem(der(pki.orderService)))])).body, { id: null, source: null, error: PEER_ERRORS.ERR_MTLS_FORWARDED_HEADER_MISSING }, 'ALB verify preset, passthrough header')
})

t.test('proxyVerdict: the proxy\'s verification header must say success before the certificate header is believed', async t => {
  const viaProxy = agentFor(t, pki, proxy)
  const cert = nginxEscaped(pki.orderService)
  const nginx = await startServer(t, pki, { trustedProxies, forwarded: 'nginx', proxyVerdict: 'nginx', verifyForwarded: false })
  t.same(PROXY_VERDICT_PRESETS.nginx, { header: 'x-ssl-client-verify', value: 'SUCCESS' })
  const nginxCases: Array<[string, string[], string | null]> = [
    ['$ssl_client_verify SUCCESS', ['X-SSL-Client-Verify', 'SUCCESS'], null],
    ['FAILED:reason', ['X-SSL-Client-Verify', 'FAILED:certificate has expired'], PEER_ERRORS.ERR_MTLS_FORWARDED_VERDICT_FAILED],
    ['NONE (no client certificate)', ['X-SSL-Client-Verify', 'NONE'], PEER_ERRORS.ERR_MTLS_FORWARDED_VERDICT_FAILED],
    ['no verdict header', [], PEER_ERRORS.ERR_MTLS_FORWARDED_VERDICT_MISSING]
  ]
  for (const [what, verdict, error] of nginxCases) {
    t.same((await who(nginx.url, viaProxy, [...verdict, 'X-SSL-Client-Cert', cert])).body, error === null ? { id: orderServiceId, source: 'forwarded', error } : { id: null, source: null, error }, `nginx: ${what}`)
  }

  const haproxy = await startServer(t, pki, { trustedProxies, forwarded: 'haproxy', proxyVerdict: 'haproxy', verifyForwarded: false })
  const base64 = der(pki.orderService).toString('base64')
  t.same((await who(haproxy.url, viaProxy, ['X-SSL-Client-Verify', '0', 'X-SSL-Client-Cert', base64])).body.id, orderServiceId, 'HAProxy: %[ssl_c_verify] 0 is success')
  t.same((await who(haproxy.url, viaProxy, ['X-SSL-Client-Verify', '10', 'X-SSL-Client-Cert', base64])).body.error, PEER_ERRORS.ERR_MTLS_FORWARDED_VERDICT_FAILED, 'HAProxy: 10 (certificate has expired) is a failure')

  // Given with verifyForwarded left true, both must pass: the verdict does not stand in for the verification.
  const both = await startServer(t, pki, { trustedProxies, forwarded: 'nginx', proxyVerdict: { header: 'X-Client-Verified', value: 'yes' } })
  t.same((await who(both.url, viaProxy, ['X-Client-Verified', 'yes', 'X-SSL-Client-Cert', cert])).body.id, orderServiceId, 'verdict and verification pass')
  t.same((await who(both.url, viaProxy, ['X-Client-Verified', 'yes', 'X-SSL-Client-Cert', encodeURIComponent(pki.caAsLeaf.certificate)])).body.error, 'ERR_MTLS_CERTIFICATE_IS_CA', 'a verdict of success does not make a refused certificate an identity')
  t.same((await who(both.url, viaProxy, ['X-Client-Verified', 'no', 'X-SSL-Client-Cert', cert])).body.error, PEER_ERRORS.ERR_MTLS_FORWARDED_VERDICT_FAILED, 'a certificate that verifies is not believed against the proxy\'s failed verdict')
})
