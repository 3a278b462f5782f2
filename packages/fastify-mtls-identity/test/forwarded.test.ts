import t from 'tap'
import { createTestPki, type IssuedCertificate } from 'mtls-pki'
import { readPemBlocks } from 'mtls-core/internal'
import { PEER_ERRORS, type ForwardedFormat } from '../src/index.js'
import { request } from 'undici'
import { thumbprintS256 } from 'mtls-core'
import { agentFor, startServer, who } from './helpers.js'

const pki = await createTestPki()
const proxy = await pki.intermediate.issue({ usage: 'client', spiffeId: 'spiffe://mycompany.com/infra/envoy' })
const trustProxyCert = { identities: ['spiffe://mycompany.com/infra/**'] }
const derBase64 = (cert: IssuedCertificate): string => readPemBlocks(cert.certificate)[0]!.der.toString('base64')
const xfccFor = (cert: IssuedCertificate, by = 'spiffe://mycompany.com/production/payment-service'): string =>
  `By=${by};Hash=${cert.fingerprint256.replaceAll(':', '').toLowerCase()};Cert="${encodeURIComponent(cert.certificate)}";URI=${'spiffe://x/y'}`

t.test('each proxy format yields the forwarded identity when the direct peer is a trusted proxy', async t => {
  const formats: Array<[string, { header: string, format: ForwardedFormat } | 'envoy' | 'rfc9440' | 'nginx' | 'aws-alb' | 'aspnet', string, string]> = [
    ['Envoy XFCC', 'envoy', 'x-forwarded-client-cert', xfccFor(pki.orderService)],
    ['RFC 9440 Client-Cert', 'rfc9440', 'client-cert', `:${derBase64(pki.orderService)}:`],
    ['nginx $ssl_client_escaped_cert', 'nginx', 'x-ssl-client-cert', encodeURIComponent(pki.orderService.certificate)],
    ['AWS ALB', 'aws-alb', 'x-amzn-mtls-clientcert', encodeURIComponent(pki.orderService.certificate)],
    ['ASP.NET base64 DER', 'aspnet', 'x-client-cert', derBase64(pki.orderService)],
    ['PEM with spaces for newlines', { header: 'X-Client-PEM', format: 'pem' }, 'x-client-pem', pki.orderService.certificate.replaceAll('\n', ' ')]
  ]
  for (const [what, forwarded, header, value] of formats) {
    const { url } = await startServer(t, pki, { trustedProxies: trustProxyCert, forwarded })
    const { status, body } = await who(url, agentFor(t, pki, proxy), [header, value])
    t.equal(status, 200)
    t.same(body, { id: 'spiffe://mycompany.com/production/order-service', source: 'forwarded', error: null }, what)
  }
})

t.test('thumbprintS256 (RFC 8705) is the forwarded certificate\'s through a trusted proxy, the direct one\'s otherwise', async t => {
  const { url } = await startServer(t, pki, { trustedProxies: trustProxyCert, forwarded: 'envoy' })
  const thumbprint = async (cert: IssuedCertificate, headers: string[] = []): Promise<string> => {
    const response = await request(`${url}/thumbprint`, { dispatcher: agentFor(t, pki, cert), headers })
    return await response.body.text()
  }
  const of = (cert: IssuedCertificate): string => thumbprintS256(readPemBlocks(cert.certificate)[0]!.der)
  t.equal(await thumbprint(proxy, ['x-forwarded-client-cert', xfccFor(pki.orderService)]), of(pki.orderService), 'forwarded: the forwarded certificate\'s')
  t.equal(await thumbprint(pki.inventoryService, ['x-forwarded-client-cert', xfccFor(pki.orderService)]), of(pki.inventoryService), 'an untrusted peer\'s header is ignored: its own')
})

t.test('with several XFCC elements, the one the trusted proxy appended (the last) counts', async t => {
  const { url } = await startServer(t, pki, { trustedProxies: trustProxyCert, forwarded: 'envoy' })
  const header = `${xfccFor(pki.inventoryService, 'spiffe://far/away')},${xfccFor(pki.orderService)}`
  t.equal((await who(url, agentFor(t, pki, proxy), ['x-forwarded-client-cert', header])).body.id, 'spiffe://mycompany.com/production/order-service')
})

t.test('spoofing: no forged, partial or ambiguous header ever yields an identity, and nothing crashes', async t => {
  const lines: Array<Record<string, unknown>> = []
  const logger = { level: 'debug', stream: { write: (line: string) => { lines.push(JSON.parse(line) as Record<string, unknown>) } } }
  const { url } = await startServer(t, pki, { trustedProxies: { ...trustProxyCert, addresses: ['127.0.0.1'] }, forwarded: 'envoy', maxHeaderLength: 8000 }, 'optional', { logger })
  const header = 'x-forwarded-client-cert'
  const viaProxy = agentFor(t, pki, proxy)

  const untrusted = await who(url, agentFor(t, pki, pki.orderService), [header, xfccFor(pki.inventoryService)])
  t.same(untrusted.body, { id: 'spiffe://mycompany.com/production/order-service', source: 'tls', error: null }, 'an ordinary client\'s header is ignored: it stays itself')
  t.ok(lines.some(line => line.level === 20 && String(line.msg).includes('forwarded identity header ignored')), 'and the ignored header is logged at debug')

  const noCertificate = await who(url, agentFor(t, pki), [header, xfccFor(pki.inventoryService)])
  t.same(noCertificate.body, { id: null, source: null, error: PEER_ERRORS.ERR_MTLS_NO_PEER_CERTIFICATE }, 'a trusted address without the proxy\'s certificate is not a proxy')

  const cases: Array<[string, string[], string]> = [
    ['no header from the proxy', [], PEER_ERRORS.ERR_MTLS_FORWARDED_HEADER_MISSING],
    ['a malformed header', [header, 'By=x;Cert="unterminated'], PEER_ERRORS.ERR_MTLS_FORWARDED_HEADER_MALFORMED],
    ['a Cert that is not a certificate', [header, `Cert="${encodeURIComponent('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n')}"`], PEER_ERRORS.ERR_MTLS_FORWARDED_HEADER_MALFORMED],
    ['an oversized header', [header, xfccFor(pki.orderService) + ';DNS=' + 'a'.repeat(8000)], PEER_ERRORS.ERR_MTLS_FORWARDED_HEADER_TOO_LONG],
    ['two headers of the name', [header, xfccFor(pki.orderService), header, xfccFor(pki.inventoryService)], PEER_ERRORS.ERR_MTLS_FORWARDED_HEADER_REPEATED],
    ['an element without Cert', [header, 'By=spiffe://a/b;URI=spiffe://mycompany.com/production/order-service'], PEER_ERRORS.ERR_MTLS_FORWARDED_CERTIFICATE_MISSING],
    ['a forwarded CA:TRUE leaf', [header, xfccFor(pki.caAsLeaf)], 'ERR_MTLS_CERTIFICATE_IS_CA']
  ]
  for (const [what, headers, error] of cases) {
    const { status, body } = await who(url, viaProxy, headers)
    t.equal(status, 200, `${what}: served`)
    t.same(body, { id: null, source: null, error }, what)
  }
  t.notMatch(JSON.stringify(lines), 'PRIVATE KEY')
})

t.test('a proxy trusted by address alone (a load balancer without a client certificate)', async t => {
  const { url } = await startServer(t, pki, { trustedProxies: { addresses: ['127.0.0.0/8', '::1'] }, forwarded: 'rfc9440' })
  const { body } = await who(url, agentFor(t, pki), ['client-cert', `:${derBase64(pki.inventoryService)}:`])
  t.same(body, { id: 'spiffe://mycompany.com/production/inventory-service', source: 'forwarded', error: null })
  const { body: other } = await who(url, agentFor(t, pki), ['client-cert', ':not base64!:'])
  t.same(other, { id: null, source: null, error: PEER_ERRORS.ERR_MTLS_FORWARDED_HEADER_MALFORMED })
  const { body: bare } = await who(url, agentFor(t, pki), ['client-cert', 'no-colons'])
  t.same(bare, { id: null, source: null, error: PEER_ERRORS.ERR_MTLS_FORWARDED_HEADER_MALFORMED })
})

t.test('an address outside the trusted range is not a proxy', async t => {
  const { url } = await startServer(t, pki, { trustedProxies: { addresses: ['10.0.0.0/8'] }, forwarded: 'aspnet' })
  const { body } = await who(url, agentFor(t, pki, pki.orderService), ['x-client-cert', derBase64(pki.inventoryService)])
  t.same(body, { id: 'spiffe://mycompany.com/production/order-service', source: 'tls', error: null })
})
