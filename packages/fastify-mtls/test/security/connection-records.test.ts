// Attacks on the one record fastify-mtls keeps of each connection's verdict, read through fastify.mtls.connection():
// a later trust must not make a connection OpenSSL refused verified; a session another replica made (sharing the
// ticket keys) keeps resuming, and a change of trust this process cannot judge from its record closes it rather
// than keeping it; the record is found through an HTTP/2 stream's socket, and is nobody's for a socket it never saw.
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { writeFile } from 'node:fs/promises'
import http2 from 'node:http2'
import { join } from 'node:path'
import * as tls from 'node:tls'
import t from 'tap'
import { createRootCa, createTestPki } from 'mtls-pki'
import { PemFeed, startFastifyServer, tempDir, until } from 'mtls-test-support'
import { fastifyMtls, loadServerTls } from '../../src/index.js'
import { beforeExpiry, keptAlive, pastExpiry, recordRoute, sessionFrom } from '../helpers.js'

const pki = await createTestPki()

// The JSON body of an answer `keptAlive().ask()` gave (its status line first).
const body = (answer: string): unknown => JSON.parse(answer.slice(answer.indexOf('{')))

t.test('optional mode: a connection OpenSSL refused stays refused when a later trust would take its certificate', async t => {
  const dir = await tempDir(t)
  const caFile = join(dir, 'ca.pem')
  await writeFile(caFile, pki.ca)
  const serverTls = await loadServerTls({ cert: pki.server.chain, key: pki.server.key, caFile, mode: 'optional' })
  const { app, port } = await startFastifyServer(t, { https: serverTls.httpsOptions }, async app => {
    await app.register(fastifyMtls, { tls: serverTls, watch: { debounceMs: 20 } })
    recordRoute(app, record => ({ resumed: record.resumed, ...(record.certificate === null ? { certificate: null, validUntil: record.validUntil } : {}) }))
  })
  const stranger = await keptAlive(t, port, pki.ca, pki.otherCa)
  t.same(body(await stranger.ask()), { verified: false, refusal: 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', resumed: false }, 'OpenSSL\'s verdict')
  const anonymous = await keptAlive(t, port, pki.ca, {})
  t.same(body(await anonymous.ask()), { verified: false, refusal: null, resumed: false, certificate: null, validUntil: null }, 'no certificate: nothing verified, nothing refused, nothing to expire')
  const before = app.mtls.stats().reloads.succeeded
  await writeFile(caFile, pki.ca + pki.otherCaAuthority.parent!.certificate)
  await until(() => app.mtls.stats().reloads.succeeded > before, 'the other root trusted too')
  t.same(body(await stranger.ask()), { verified: false, refusal: 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', resumed: false }, 'still refused: nothing verified it')
})

t.test('a session made by a replica sharing the ticket keys resumes; a change of trust it cannot judge here closes it', async t => {
  const root = await createRootCa({ commonName: 'replica root' })
  const serverCa = await root.createIntermediate({ commonName: 'replica server CA' })
  const clientCa = await root.createIntermediate({ commonName: 'replica client CA' })
  const server = await serverCa.issue({ usage: 'server', dnsNames: ['localhost'], ips: ['127.0.0.1'] })
  // One client of a CA the replicas hold no copy of (it sends it), one of the replicas' own CA.
  const foreign = await clientCa.issue({ usage: 'client', spiffeId: 'spiffe://mycompany.com/production/foreign' })
  const local = await serverCa.issue({ usage: 'client', spiffeId: 'spiffe://mycompany.com/production/local' })
  const dir = await tempDir(t)
  const files = { certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key'), caFile: join(dir, 'ca.crt'), crlFile: join(dir, 'crl.pem') }
  const crls = async (): Promise<string> => [await root.createCrl(), await serverCa.createCrl(), await clientCa.createCrl()].join('')
  await Promise.all([writeFile(files.certFile, server.chain), writeFile(files.keyFile, server.key), writeFile(files.caFile, root.certificate), writeFile(files.crlFile, await crls())])
  const ticketKeys = randomBytes(48)
  const replicas = []
  for (let i = 0; i < 2; i++) {
    const serverTls = await loadServerTls({ ...files, ticketKeys })
    replicas.push(await startFastifyServer(t, { https: serverTls.httpsOptions }, async app => {
      await app.register(fastifyMtls, { tls: serverTls, watch: { debounceMs: 20 } })
      recordRoute(app, record => ({ resumed: record.resumed }))
    }))
  }
  const [first, second] = replicas as [typeof replicas[0], typeof replicas[0]]
  const resumedForeign = await keptAlive(t, second.port, root.certificate, foreign, await sessionFrom(first.port, foreign, root.certificate))
  const resumedLocal = await keptAlive(t, second.port, root.certificate, local, await sessionFrom(first.port, local, root.certificate))
  t.same(body(await resumedForeign.ask()), { verified: true, refusal: null, resumed: true }, 'the other replica\'s session resumes')
  t.same(body(await resumedLocal.ask()), { verified: true, refusal: null, resumed: true }, 'and one of the replicas\' own CA')

  // The root's CRL is renewed: every chain's intermediate is judged again, and this replica never saw the foreign one.
  const before = second.app.mtls.stats().reloads.succeeded
  await writeFile(files.crlFile, await crls())
  await until(() => second.app.mtls.stats().reloads.succeeded > before, 'the renewed CRLs applied')
  await until(resumedForeign.closed, 'the foreign client\'s resumed connection closed: its chain is not on record here')
  t.equal(second.app.mtls.stats().failures.other, 1, 'counted (ERR_MTLS_CHAIN_NOT_RECORDED)')
  t.same(body(await resumedLocal.ask()), { verified: true, refusal: null, resumed: true }, 'the chain of the other is the replicas\' own CAs: judged, kept')
  const reconnected = await keptAlive(t, second.port, root.certificate, foreign)
  t.same(body(await reconnected.ask()), { verified: true, refusal: null, resumed: false }, 'the client reconnects, and OpenSSL judges it')
})

t.test('the record is found through an HTTP/2 stream\'s socket, and is nobody\'s for a socket the plugin never saw', async t => {
  const serverTls = await loadServerTls({ cert: pki.server.chain, key: pki.server.key, ca: pki.ca })
  const streamSockets: object[] = []
  const { app: served, url } = await startFastifyServer(t, { https: { ...serverTls.httpsOptions, allowHTTP1: true }, fastify: { http2: true } }, async app => {
    await app.register(fastifyMtls, { tls: serverTls })
    recordRoute(app, record => ({ resumed: record.resumed }))
    app.addHook('onRequest', async request => { streamSockets.push(request.raw.socket) })
  })
  const session = http2.connect(url, { ca: pki.ca, servername: 'localhost', cert: pki.orderService.chain, key: pki.orderService.key })
  t.teardown(() => session.close())
  const body = await new Promise<string>((resolve, reject) => {
    const stream = session.request({ ':path': '/record' })
    let text = ''
    stream.setEncoding('utf8').on('data', chunk => { text += chunk }).on('end', () => resolve(text)).on('error', reject)
  })
  t.same(JSON.parse(body), { verified: true, refusal: null, resumed: false }, 'found through the stream\'s socket')
  t.equal(served.mtls.connection(new tls.TLSSocket(null as unknown as import('node:net').Socket)), null, 'a TLS socket it never saw')
  const record = served.mtls.connection(streamSockets[0])
  t.throws(() => { (record as { verified: boolean }).verified = false }, TypeError, 'what a route gets cannot be written to')
  t.throws(() => { (record as { refusal: string | null }).refusal = null }, TypeError)
  t.equal(served.mtls.connection({}), null, 'something else')
  session.close()
  await once(session, 'close')
  await until(() => served.mtls.connection(streamSockets[0]) === null, 'the stream\'s socket of a closed session')
  t.pass('a closed HTTP/2 session\'s stream socket (which throws when read) finds nothing')
  t.equal(served.mtls.connection(null), null, 'nothing')
})

t.test('with federated bundles, a session another replica made for a partner\'s client resumes only where its root can be found', async t => {
  const partner = await createTestPki({ trustDomain: 'partner.example' })
  const ticketKeys = randomBytes(48)
  const replicas = []
  for (let i = 0; i < 2; i++) {
    const feed = new PemFeed({ cert: pki.server.chain, key: pki.server.key, trustDomains: { 'mycompany.com': pki.ca, 'partner.example': partner.ca } })
    const serverTls = await loadServerTls({ x509Source: feed, ticketKeys })
    replicas.push(await startFastifyServer(t, { https: serverTls.httpsOptions }, async app => {
      await app.register(fastifyMtls, { tls: serverTls })
      recordRoute(app, record => ({ resumed: record.resumed }))
    }))
  }
  const [first, second] = replicas as [typeof replicas[0], typeof replicas[0]]
  const ours = await sessionFrom(first.port, pki.orderService, pki.ca)
  const theirs = await sessionFrom(first.port, partner.orderService, pki.ca)
  t.same(body(await (await keptAlive(t, second.port, pki.ca, pki.orderService, ours)).ask()), { verified: true, refusal: null, resumed: true }, 'ours: the replicas hold its CAs, its root is found')
  t.same(body(await (await keptAlive(t, first.port, pki.ca, partner.orderService, theirs)).ask()), { verified: true, refusal: null, resumed: true }, 'the partner\'s, where its full handshake was recorded')
  const elsewhere = await keptAlive(t, second.port, pki.ca, partner.orderService, theirs)
  await until(elsewhere.closed, 'the partner\'s resumed session refused on the other replica')
  t.equal(second.app.mtls.stats().failures.other, 1, 'counted (ERR_MTLS_CHAIN_NOT_RECORDED)')
  t.same(body(await (await keptAlive(t, second.port, pki.ca, partner.orderService)).ask()), { verified: true, refusal: null, resumed: false }, 'its full handshake is taken')
})

t.test('a connection\'s record says CRL_HAS_EXPIRED once the trust\'s CRLs are past their next update', async t => {
  const root = await createRootCa({ commonName: 'stale root' })
  const intermediate = await root.createIntermediate({ commonName: 'stale intermediate' })
  const server = await intermediate.issue({ usage: 'server', dnsNames: ['localhost'], ips: ['127.0.0.1'] })
  const client = await intermediate.issue({ usage: 'client', spiffeId: 'spiffe://mycompany.com/production/stale' })
  const { open, before, expiry } = await beforeExpiry(t, async nextUpdate => {
    const serverTls = await loadServerTls({ cert: server.chain, key: server.key, ca: root.certificate, crl: (await intermediate.createCrls({ nextUpdate })).join('') })
    const { port } = await startFastifyServer(t, { https: serverTls.httpsOptions }, async app => {
      await app.register(fastifyMtls, { tls: serverTls })
      recordRoute(app)
    })
    const open = await keptAlive(t, port, root.certificate, client)
    return { open, before: await open.ask() }
  })
  t.same(body(before), { verified: true, refusal: null }, 'while the CRLs are current')
  await pastExpiry(expiry)
  t.same(body(await open.ask()), { verified: false, refusal: 'CRL_HAS_EXPIRED' }, 'after it')
})

t.test('the verifier of forwarded certificates is built for the trust in force, once per trust', async t => {
  const dir = await tempDir(t)
  const caFile = join(dir, 'ca.pem')
  await writeFile(caFile, pki.ca)
  const serverTls = await loadServerTls({ cert: pki.server.chain, key: pki.server.key, caFile })
  const { app } = await startFastifyServer(t, { https: serverTls.httpsOptions }, async app => {
    await app.register(fastifyMtls, { tls: serverTls, watch: false })
  })
  const first = app.mtls.verifier()
  t.equal(app.mtls.verifier(), first, 'asked again under the same trust: the same verifier')
  const leaf = (pem: string): Buffer => Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ''), 'base64')
  t.ok(first.verify(leaf(pki.orderService.certificate), { purpose: 'client' }) > Date.now(), 'it verifies a certificate of the trust')
  t.throws(() => first.verify(leaf(pki.otherCa.certificate), { purpose: 'client' }), { code: 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY' })
  // The other root, and its intermediate: a forwarded header carries the leaf alone.
  await writeFile(caFile, pki.ca + pki.otherCaAuthority.parent!.certificate + pki.otherCaAuthority.certificate)
  await app.mtls.reload()
  const next = app.mtls.verifier()
  t.not(next, first, 'another trust: another verifier')
  t.ok(next.verify(leaf(pki.otherCa.certificate), { purpose: 'client' }) > Date.now(), 'which takes the other CA\'s certificates')
})
