// A trusted proxy forwards whatever certificate its client showed. Before, the identity plugin parsed it and
// believed it: a certificate from another CA, an expired, revoked or serverAuth-only one, the root CA itself,
// even a self-signed certificate naming an admin SPIFFE ID, all became identities.
import { webcrypto } from 'node:crypto'
import { connect as http2Connect } from 'node:http2'
import t from 'tap'
import Fastify from 'fastify'
import { fastifyMtls, loadServerTls } from 'fastify-mtls'
import { createTestPki, type IssuedCertificate } from 'mtls-pki'
import { ChainVerifier } from 'mtls-core'
import { readPemBlocks, toPem } from 'mtls-core/internal'
import { x509 } from 'mtls-pki/x509'
import { fastifyMtlsIdentity, PEER_ERRORS } from '../../src/index.js'
import { agentFor, startServer, who } from '../helpers.js'

const pki = await createTestPki()
const proxy = await pki.intermediate.issue({ usage: 'client', spiffeId: 'spiffe://mycompany.com/infra/envoy' })
const trustedProxies = { identities: ['spiffe://mycompany.com/infra/**'] }
const base64 = (pem: string): string => readPemBlocks(pem)[0]!.der.toString('base64')
const aspnet = (cert: IssuedCertificate | string): string[] => ['x-client-cert', base64(typeof cert === 'string' ? cert : cert.certificate)]

async function selfSignedAdmin (): Promise<string> {
  const keys = await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify'])
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01',
    name: 'CN=admin',
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 86_400_000),
    keys,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]),
      new x509.SubjectAlternativeNameExtension([{ type: 'url', value: 'spiffe://mycompany.com/production/admin' }])
    ]
  } as unknown as Parameters<typeof x509.X509CertificateGenerator.createSelfSigned>[0])
  return toPem(cert.rawData, 'CERTIFICATE')
}

t.test('a forwarded certificate is verified as the TLS layer verifies a direct one', async t => {
  const { url } = await startServer(t, pki, { trustedProxies, forwarded: 'aspnet' }, 'optional', {}, { crl: pki.crl })
  const viaProxy = agentFor(t, pki, proxy)
  const refused: Array<[string, string[], string]> = [
    ['from another CA', aspnet(pki.otherCa), 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY'],
    ['expired', aspnet(pki.expired), 'CERT_HAS_EXPIRED'],
    ['not yet valid', aspnet(pki.notYetValid), 'CERT_NOT_YET_VALID'],
    ['revoked', aspnet(pki.revoked), 'CERT_REVOKED'],
    ['serverAuth only', aspnet(pki.serverOnly), 'INVALID_PURPOSE'],
    ['the server\'s own certificate', aspnet(pki.server), 'INVALID_PURPOSE'],
    ['the root CA itself', aspnet(pki.ca), 'INVALID_PURPOSE'],
    ['the intermediate CA itself', aspnet(pki.intermediate.certificate), 'INVALID_PURPOSE'],
    ['a CA:TRUE leaf of the right CA', aspnet(pki.caAsLeaf), 'ERR_MTLS_CERTIFICATE_IS_CA'],
    ['a self-signed certificate with an admin SPIFFE ID', aspnet(await selfSignedAdmin()), 'DEPTH_ZERO_SELF_SIGNED_CERT']
  ]
  for (const [what, header, error] of refused) {
    const { status, body } = await who(url, viaProxy, header)
    t.equal(status, 200, `${what}: the request is served, the route decides`)
    t.same(body, { id: null, source: null, error }, what)
  }
  t.same((await who(url, viaProxy, aspnet(pki.orderService))).body, { id: 'spiffe://mycompany.com/production/order-service', source: 'forwarded', error: null }, 'a good one still passes')
})

t.test('verifyForwarded: false leaves verification to the proxy, as documented', async t => {
  const { url } = await startServer(t, pki, { trustedProxies, forwarded: 'aspnet', verifyForwarded: false })
  const { body } = await who(url, agentFor(t, pki, proxy), aspnet(pki.otherCa))
  t.same(body, { id: 'spiffe://mycompany.com/production/order-service', source: 'forwarded', error: null })
  const ca = await who(url, agentFor(t, pki, proxy), aspnet(pki.caAsLeaf))
  t.same(ca.body, { id: null, source: null, error: 'ERR_MTLS_CERTIFICATE_IS_CA' }, 'but a CA is never an identity')
})

t.test('ca and crl name another trust for forwarded certificates than the server\'s', async t => {
  const otherRoot = pki.otherCaAuthority.parent!.certificate
  const { url } = await startServer(t, pki, { trustedProxies, forwarded: 'aspnet', ca: [otherRoot, pki.otherCaAuthority.certificate] })
  const viaProxy = agentFor(t, pki, proxy)
  t.equal((await who(url, viaProxy, aspnet(pki.otherCa))).body.source, 'forwarded')
  t.equal((await who(url, viaProxy, aspnet(pki.orderService))).body.error, 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY')
})

t.test('without fastify-mtls, forwarded certificates need ca or an explicit opt-out: ready() fails, in either order', async t => {
  for (const options of [{}, { verifyForwarded: true }]) {
    const app = Fastify()
    await app.register(fastifyMtlsIdentity, { trustedProxies: { addresses: ['127.0.0.1'] }, forwarded: 'rfc9440', ...options })
    await t.rejects(async () => await app.ready(), { code: 'FST_MTLS_IDENTITY_INVALID_OPTION', message: /register fastify-mtls, give ca/ })
  }
  const app = Fastify()
  await app.register(fastifyMtlsIdentity, { trustedProxies: { addresses: ['127.0.0.1'] }, forwarded: 'rfc9440', verifyForwarded: false })
  await t.resolves(async () => await app.ready())
  await app.close()

  // Identity registered before fastify-mtls, not awaited: it still finds the server's trust.
  const serverTls = await loadServerTls({ cert: pki.server.chain, key: pki.server.key, ca: pki.ca, mode: 'optional' })
  const late = Fastify({ https: serverTls.httpsOptions })
  late.register(fastifyMtlsIdentity, { trustedProxies, forwarded: 'aspnet' })
  late.register(fastifyMtls, { tls: serverTls })
  late.get('/who', async request => ({ id: request.peerIdentity?.id ?? null, source: request.peerIdentity?.source ?? null, error: request.peerCertificateError }))
  await late.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => late.close())
  const url = `https://127.0.0.1:${(late.server.address() as { port: number }).port}`
  t.equal((await who(url, agentFor(t, pki, proxy), aspnet(pki.otherCa))).body.error, 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY')
})

t.test('contradictory trust options are refused at registration', async t => {
  const cases = [
    { trustedProxies, forwarded: 'aspnet' as const, verifyForwarded: false, ca: pki.ca },
    { ca: pki.ca },
    { trustedProxies, forwarded: 'aspnet' as const, crl: [...pki.crl] },
    { trustedProxies, forwarded: 'aspnet' as const, ca: 'not a certificate' },
    { trustedProxies, forwarded: 'aspnet' as const, verifyForwarded: 'yes' as unknown as boolean }
  ]
  for (const options of cases) {
    const app = Fastify()
    app.register(fastifyMtlsIdentity, options)
    await t.rejects(async () => await app.ready(), { code: 'FST_MTLS_IDENTITY_INVALID_OPTION' }, JSON.stringify(Object.keys(options)))
  }
})

t.test('a keep-alive proxy connection pays the verification once per distinct client; a change of trust judges afresh', async t => {
  const otherTrust = [pki.otherCaAuthority.parent!.certificate, pki.otherCaAuthority.certificate]
  const serverTls = await loadServerTls({ cert: pki.server.chain, key: pki.server.key, ca: [pki.ca, ...otherTrust], mode: 'optional' })
  const app = Fastify({ https: serverTls.httpsOptions })
  await app.register(fastifyMtls, { tls: serverTls })
  await app.register(fastifyMtlsIdentity, { trustedProxies, forwarded: 'aspnet' })
  app.get('/who', async request => ({ id: request.peerIdentity?.id ?? null, source: request.peerIdentity?.source ?? null, error: request.peerCertificateError }))
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  const url = `https://127.0.0.1:${(app.server.address() as { port: number }).port}`

  const original = ChainVerifier.prototype.verify
  let verifications = 0
  ChainVerifier.prototype.verify = function (this: ChainVerifier, ...args: Parameters<ChainVerifier['verify']>) {
    verifications++
    return original.apply(this, args)
  }
  t.teardown(() => { ChainVerifier.prototype.verify = original })
  const viaProxy = agentFor(t, pki, proxy)
  for (let i = 0; i < 20; i++) t.equal((await who(url, viaProxy, aspnet(pki.orderService))).body.source, 'forwarded')
  t.equal(verifications, 1, 'twenty requests of one client: one verification')
  for (let i = 0; i < 5; i++) t.equal((await who(url, viaProxy, aspnet(pki.otherCa))).body.source, 'forwarded')
  t.equal(verifications, 2, 'a second client: one more')
  for (let i = 0; i < 5; i++) t.equal((await who(url, viaProxy, aspnet(pki.expired))).body.error, 'CERT_HAS_EXPIRED')
  t.equal(verifications, 3, 'refusals are remembered too')

  // The server stops trusting the other CA: on the same proxy connection, its client is judged again and refused.
  await serverTls.source.reload({ cert: pki.server.chain, key: pki.server.key, ca: pki.ca })
  t.same((await who(url, viaProxy, aspnet(pki.otherCa))).body, { id: null, source: null, error: 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY' })
  t.equal(verifications, 4, 'the header is verified again; the proxy\'s own connection is judged from its record, never path-validated again')
})

t.test('one certificate per header, in every format: two are malformed, never resolved by picking one', async t => {
  const two = pki.orderService.certificate + pki.inventoryService.certificate
  const xfcc = (pem: string): string => `By=spiffe://mycompany.com/production/payment-service;Cert="${encodeURIComponent(pem)}"`
  const cases: Array<[string, 'envoy' | 'rfc9440' | 'nginx' | 'aws-alb' | 'aspnet' | { header: string, format: 'pem' }, string]> = [
    ['nginx, two PEM blocks', 'nginx', encodeURIComponent(two)],
    ['nginx, a block and an unterminated one', 'nginx', encodeURIComponent(pki.orderService.certificate + '-----BEGIN CERTIFICATE-----\nAAAA')],
    ['aws-alb, two PEM blocks', 'aws-alb', encodeURIComponent(two)],
    ['pem, two blocks on one line', { header: 'x-client-pem', format: 'pem' }, two.replaceAll('\n', ' ')],
    ['envoy, two blocks in one Cert', 'envoy', xfcc(two)],
    ['aspnet, two DER certificates glued', 'aspnet', Buffer.concat([readPemBlocks(pki.orderService.certificate)[0]!.der, readPemBlocks(pki.inventoryService.certificate)[0]!.der]).toString('base64')],
    ['rfc9440, a list of two byte sequences', 'rfc9440', `:${base64(pki.orderService.certificate)}:, :${base64(pki.inventoryService.certificate)}:`],
    ['rfc9440, glued DER', 'rfc9440', `:${Buffer.concat([readPemBlocks(pki.orderService.certificate)[0]!.der, Buffer.from([0x30, 0x00])]).toString('base64')}:`]
  ]
  for (const [what, forwarded, value] of cases) {
    const { url } = await startServer(t, pki, { trustedProxies, forwarded })
    const header = typeof forwarded === 'string' ? { envoy: 'x-forwarded-client-cert', rfc9440: 'client-cert', nginx: 'x-ssl-client-cert', 'aws-alb': 'x-amzn-mtls-clientcert', aspnet: 'x-client-cert' }[forwarded] : forwarded.header
    const { body } = await who(url, agentFor(t, pki, proxy), [header, value])
    t.same(body, { id: null, source: null, error: PEER_ERRORS.ERR_MTLS_FORWARDED_HEADER_MALFORMED }, what)
  }
})

t.test('hundreds of BEGIN lines in a header are refused as malformed before any pattern runs', async t => {
  const { url } = await startServer(t, pki, { trustedProxies, forwarded: { header: 'x-client-pem', format: 'pem' } })
  const { body } = await who(url, agentFor(t, pki, proxy), ['x-client-pem', '-----BEGIN CERTIFICATE----- '.repeat(400) + pki.orderService.certificate.replaceAll('\n', ' ')])
  t.equal(body.error, PEER_ERRORS.ERR_MTLS_FORWARDED_HEADER_MALFORMED)
})

t.test('HTTP/2 with forwarded configured: served, and a repeated header is seen', async t => {
  const { url } = await startServer(t, pki, { trustedProxies, forwarded: 'aspnet' }, 'optional', { http2: true })
  const session = http2Connect(url, { ca: pki.ca, cert: proxy.chain, key: proxy.key, servername: 'localhost' })
  t.teardown(() => session.close())
  const get = async (headers: Record<string, string | string[]>): Promise<{ status: number, body: Record<string, unknown> }> => await new Promise((resolve, reject) => {
    const stream = session.request({ ':path': '/who', ...headers })
    let data = ''
    let status = 0
    stream.on('response', response => { status = Number(response[':status']) })
    stream.on('data', chunk => { data += String(chunk) })
    stream.on('end', () => resolve({ status, body: JSON.parse(data) as Record<string, unknown> }))
    stream.on('error', reject)
  })
  t.same(await get({ 'x-client-cert': base64(pki.orderService.certificate) }), { status: 200, body: { id: 'spiffe://mycompany.com/production/order-service', source: 'forwarded', error: null } })
  t.same(await get({ 'x-client-cert': [base64(pki.orderService.certificate), base64(pki.inventoryService.certificate)] }), { status: 200, body: { id: null, source: null, error: PEER_ERRORS.ERR_MTLS_FORWARDED_HEADER_REPEATED } })
  t.same(await get({}), { status: 200, body: { id: null, source: null, error: PEER_ERRORS.ERR_MTLS_FORWARDED_HEADER_MISSING } })
})
