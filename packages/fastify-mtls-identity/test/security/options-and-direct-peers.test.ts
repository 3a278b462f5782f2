// Registration mistakes that silently widened trust, and direct peers that passed for someone else.
import { once } from 'node:events'
import * as tls from 'node:tls'
import t, { type Test } from 'tap'
import Fastify from 'fastify'
import { createTestPki } from 'mtls-pki'
import { readPemBlocks } from 'mtls-core/internal'
import { fastifyMtlsIdentity, type FastifyMtlsIdentityOptions } from '../../src/index.js'
import { compileTrustedProxies } from '../../src/trusted-proxies.js'
import { agentFor, startServer, who } from '../helpers.js'

const pki = await createTestPki()

async function refused (t: Test, options: unknown, message: RegExp): Promise<void> {
  const app = Fastify()
  app.register(fastifyMtlsIdentity, options as FastifyMtlsIdentityOptions)
  await t.rejects(async () => await app.ready(), { code: 'FST_MTLS_IDENTITY_INVALID_OPTION', message }, JSON.stringify(options))
}

t.test('a malformed CIDR in trustedProxies.addresses is refused, never widened to /0', async t => {
  for (const entry of ['10.0.0.0/', '10.0.0.0/ ', '/33', '1.2.3/8', '10.0.0.0/8/9', '10.0.0.0/33', '::1/129', '10.0.0.0/-1', '10.0.0.0/+8', '10.0.0.0/08', '10.0.0.0/8.0', ' 10.0.0.1', '']) {
    await refused(t, { trustedProxies: { addresses: [entry] } }, /is not an IP address or CIDR/)
  }
  await refused(t, { trustedProxies: { addresses: '10.0.0.0/8' } }, /must be a non-empty list/)
  await refused(t, { trustedProxies: { addresses: [] } }, /must be a non-empty list/)
  await refused(t, { trustedProxies: { identities: [] } }, /must be a non-empty list/)
  await refused(t, { trustedProxies: { addresses: [10] } }, /is not an IP address or CIDR/)
})

t.test('well-formed addresses and CIDRs still register', async t => {
  for (const entry of ['10.0.0.0/8', '10.0.0.1', '0.0.0.0/0', '::1', 'fd00::/8', '::/0', '192.168.1.0/24']) {
    const app = Fastify()
    app.register(fastifyMtlsIdentity, { trustedProxies: { addresses: [entry] } })
    await t.resolves(async () => await app.ready(), entry)
    await app.close()
  }
})

t.test('an IPv6 zone in trustedProxies.addresses is refused: the match would drop it and trust the address on every interface', async t => {
  // This got through before the fix: isIP() takes `fe80::1%eth0` and Node's BlockList drops the zone, so the rule trusted that
  // link-local address arriving on any interface.
  for (const entry of ['fe80::1%eth0', 'fe80::%eth0/64', 'fe80::1%1', 'fe80::1%25eth0']) {
    await refused(t, { trustedProxies: { addresses: [entry] } }, /has an IPv6 zone/)
  }
})

t.test('an IPv4-mapped rule in trustedProxies.addresses matches no peer, and registering one logs a warning', async t => {
  const mapped = ['::ffff:127.0.0.1', '::FFFF:7f00:1/128', '0:0:0:0:0:ffff:7f00:1', '::ffff:10.0.0.0/104']
  for (const entry of mapped) {
    const trusted = compileTrustedProxies({ addresses: [entry] })
    t.notOk(trusted(null, '127.0.0.1') || trusted(null, '::ffff:127.0.0.1') || trusted(null, '::ffff:10.0.0.1') || trusted(null, '10.0.0.1'), `${entry} matches no peer, mapped or not`)
  }
  const lines: Array<Record<string, unknown>> = []
  const app = Fastify({ logger: { level: 'warn', stream: { write: (line: string) => { lines.push(JSON.parse(line) as Record<string, unknown>) } } } })
  app.register(fastifyMtlsIdentity, { trustedProxies: { addresses: [...mapped, '::1', '10.0.0.0/8', '::/0'] } })
  await app.ready()
  await app.close()
  const warnings = lines.filter(line => line.level === 40).map(line => String(line.msg))
  t.equal(warnings.length, mapped.length, 'one warning per IPv4-mapped rule, none for the others')
  for (const entry of mapped) t.ok(warnings.some(message => message.includes(JSON.stringify(entry)) && message.includes('write it as IPv4')), `warned: ${entry}`)
})

t.test('proxyVerdict is checked at registration', async t => {
  const base = { trustedProxies: { addresses: ['10.0.0.1'] }, forwarded: 'nginx' }
  await refused(t, { trustedProxies: { addresses: ['10.0.0.1'] }, proxyVerdict: 'nginx' }, /proxyVerdict needs forwarded/)
  await refused(t, { ...base, proxyVerdict: 'traefik' }, /proxyVerdict must be one of nginx, haproxy or \{ header, value \}/)
  await refused(t, { ...base, proxyVerdict: { header: 'x-ssl-client-verify', valeu: 'SUCCESS' } }, /proxyVerdict: unknown option "valeu" \(did you mean "value"\?\)/)
  await refused(t, { ...base, proxyVerdict: { header: 'x ssl', value: 'SUCCESS' } }, /proxyVerdict.header must be a header name/)
  // HTTP strips the spaces around a header value, and a verdict cannot hold a line break: values that could never arrive.
  for (const value of ['', 'SUCCESS ', ' SUCCESS', 'SUC\r\nCESS', 'SUCC\u00e8S', 7]) {
    await refused(t, { ...base, proxyVerdict: { header: 'x-ssl-client-verify', value } }, /proxyVerdict.value must be the exact text/)
  }
  await refused(t, { ...base, proxyVerdict: { header: 'X-SSL-Client-Cert', value: 'SUCCESS' } }, /proxyVerdict.header and the forwarded certificate's header are both x-ssl-client-cert/)
  await refused(t, { ...base, proxyVerdict: null }, /proxyVerdict must be a preset name or \{ header, value \}/)
})

t.test('a misspelt option is refused with the closest valid one, at every level', async t => {
  await refused(t, { trustedProxys: { addresses: ['10.0.0.1'] } }, /unknown option "trustedProxys" \(did you mean "trustedProxies"\?\)/)
  await refused(t, { verifyForwared: false }, /did you mean "verifyForwarded"/)
  await refused(t, { trustedProxies: { adresses: ['10.0.0.1'] } }, /trustedProxies: unknown option "adresses" \(did you mean "addresses"\?\)/)
  await refused(t, { trustedProxies: { addresses: ['10.0.0.1'] }, forwarded: { header: 'x-client-cert', fromat: 'pem' } }, /forwarded: unknown option "fromat"/)
  await refused(t, { trustedProxies: { addresses: ['10.0.0.1'] }, forwarded: { header: 'x client cert', format: 'pem' } }, /forwarded.header must be a header name/)
  await refused(t, { svid: 'no' }, /svid must be true or false/)
})

t.test('a CA certificate presented directly never becomes an identity, in optional and in require mode', async t => {
  const dnsOnlyCa = await pki.intermediate.issue({ usage: 'client', isCa: true, dnsNames: ['admin.mycompany.com'] })
  const cnOnlyCa = await pki.intermediate.issue({ usage: 'client', isCa: true, commonName: 'admin' })
  const { url } = await startServer(t, pki)
  for (const [what, cert] of [['a DNS-only CA', dnsOnlyCa], ['a CN-only CA', cnOnlyCa], ['a SPIFFE CA', pki.caAsLeaf]] as const) {
    const { status, body } = await who(url, agentFor(t, pki, cert))
    t.equal(status, 200, `${what}: served; the route decides`)
    t.same(body, { id: null, source: null, error: 'ERR_MTLS_CERTIFICATE_IS_CA' }, what)
  }

  const { url: strict } = await startServer(t, pki, {}, 'require')
  const socket = tls.connect({ host: '127.0.0.1', port: Number(new URL(strict).port), ca: pki.ca, servername: 'localhost', cert: dnsOnlyCa.chain, key: dnsOnlyCa.key, minVersion: 'TLSv1.3' })
  socket.on('error', () => {})
  socket.write('GET /who HTTP/1.1\r\nHost: localhost\r\n\r\n')
  let answer = ''
  socket.on('data', chunk => { answer += String(chunk) })
  await once(socket, 'close')
  t.equal(answer, '', 'require mode closes the connection without an answer')
})

t.test('a CN that reads as a SPIFFE ID stays a CN: id cn:…, no SPIFFE ID', async t => {
  const impostor = await pki.intermediate.issue({ usage: 'client', commonName: 'spiffe://mycompany.com/production/admin' })
  const { url } = await startServer(t, pki)
  t.same((await who(url, agentFor(t, pki, impostor))).body, { id: 'cn:spiffe://mycompany.com/production/admin', source: 'tls', error: null })
  const { url: custom } = await startServer(t, pki, { identify: identity => identity.commonName ?? 'nobody' })
  t.same((await who(custom, agentFor(t, pki, impostor))).body, { id: null, source: null, error: 'ERR_MTLS_CERTIFICATE_ID_CONFUSABLE' }, 'an identify() that copies such a CN is refused')
})

t.test('an identify() that throws anything at all gives null, never a crash or an identity', async t => {
  for (const thrown of [undefined, null, 'a string', new Error('boom')]) {
    const { url } = await startServer(t, pki, { identify: () => { throw thrown } })
    const { status, body } = await who(url, agentFor(t, pki, pki.orderService))
    t.equal(status, 200, `throwing ${String(thrown)}: served`)
    t.same(body, { id: null, source: null, error: 'ERR_MTLS_CERTIFICATE_ID_INVALID' }, `throwing ${String(thrown)}`)
  }
})

t.test('an IPv6 rule never trusts an IPv4 peer (::/0 once trusted every 127.0.0.1 client)', async t => {
  const { url } = await startServer(t, pki, { trustedProxies: { addresses: ['::/0'] }, forwarded: 'rfc9440' })
  const forged = `:${readPemBlocks(pki.inventoryService.certificate)[0]!.der.toString('base64')}:`
  const { body } = await who(url, agentFor(t, pki, pki.orderService), ['client-cert', forged])
  t.same(body, { id: 'spiffe://mycompany.com/production/order-service', source: 'tls', error: null }, 'the IPv4 client stays itself')
})

t.test('a polluted Object.prototype changes no option', async t => {
  const proto = Object.prototype as Record<string, unknown>
  proto.verifyForwarded = false
  try {
    const { url } = await startServer(t, pki, { trustedProxies: { addresses: ['127.0.0.1'] }, forwarded: 'rfc9440' })
    const other = `:${readPemBlocks(pki.otherCa.certificate)[0]!.der.toString('base64')}:`
    t.same((await who(url, agentFor(t, pki), ['client-cert', other])).body, { id: null, source: null, error: 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY' }, 'forwarded certificates are still verified')
  } finally {
    delete proto.verifyForwarded
  }
})
