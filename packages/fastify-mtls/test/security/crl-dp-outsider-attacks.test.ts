// An outsider's attacks on revocation by CRL distribution points (attack review of `revocation.crlDistributionPoints`):
// whoever answers for a distribution point over http: (a stale mirror, a cache, anyone on the path) serves CRLs the
// issuer really signed, in an order of its choosing, or keeps one of several distribution points from answering.
// Each test marked "Found" found a problem: it fails until the code is fixed; the others found nothing and stay as
// regression tests.
import { randomBytes } from 'node:crypto'
import http2 from 'node:http2'
import t from 'tap'
import { createRootCa, type CertificateAuthority, type IssuedCertificate } from 'mtls-pki'
import { startFastifyServer, until } from 'mtls-test-support'
import { readPemBlocks } from 'mtls-core/internal'
import { fastifyMtls, loadServerTls, type RevocationOptions } from '../../src/index.js'
import { attempt, keptAlive, sessionFrom, pointServing, startVerdictServer, type Teardown } from '../helpers.js'

const root = await createRootCa({ commonName: 'crl dp outsider root' })
const intermediate = await root.createIntermediate({ commonName: 'crl dp outsider CA' })
const serverCert = await intermediate.issue({ dnsNames: ['localhost'], ips: ['127.0.0.1'], usage: 'server' })
const crlOf = async (ca: CertificateAuthority, options: Parameters<CertificateAuthority['createCrl']>[0] = {}): Promise<Buffer> =>
  Buffer.from((readPemBlocks(await ca.createCrl(options))[0] as { der: Uint8Array }).der)

async function start (t: Teardown, revocation: RevocationOptions): Promise<Awaited<ReturnType<typeof startVerdictServer>>> {
  return await startVerdictServer(t, { cert: serverCert.chain, key: serverCert.key, ca: root.certificate, mode: 'optional' }, { revocation })
}
const verdict = async (port: number, cert: IssuedCertificate): Promise<unknown> =>
  JSON.parse((await attempt(port, { ca: root.certificate, chain: cert.chain, key: cert.key }, {}, '/verdict')).body)

// Found: ClientRevocation#refresh keeps whatever CRL of the issuer it downloads, older or newer than the one in force
// (no thisUpdate / cRLNumber comparison), and #apply then replaces the certificate's cached revocation with the older
// CRL's "good". OpenSSL, given both, takes the newest; RFC 5280 5.2.3 makes cRLNumber monotonic for this.
t.test('a distribution point that serves an older CRL (still current) after a newer one does not unrevoke a certificate', async t => {
  const point = await pointServing(t, response => { response.end(Buffer.alloc(0)) })
  const cert = await intermediate.issue({ usage: 'client', crlDistributionPoints: [point.url] })
  // Published an hour ago, for a week: current, and listing nothing.
  const older = await crlOf(intermediate, { thisUpdate: new Date(Date.now() - 3_600_000) })
  intermediate.revoke(cert)
  const newer = await crlOf(intermediate)
  point.serve(response => { response.end(newer) })
  const { app, port } = await start(t, { crlDistributionPoints: true, crlRefreshMs: 1000 })
  t.same(await verdict(port, cert), { verified: false, refusal: 'CERT_REVOKED' }, 'the newer CRL revokes it')
  const inForce = app.mtls.status().revocation?.crl?.distributionPoints[0]?.thisUpdate.getTime()
  // Whoever answers for the distribution point now replays the older CRL.
  point.serve(response => { response.end(older) })
  const before = point.requests()
  await until(() => point.requests() > before + 1, 'the older CRL downloaded at least twice')
  t.equal(app.mtls.status().revocation?.crl?.distributionPoints[0]?.thisUpdate.getTime(), inForce, 'the newer CRL stays in force')
  t.same(await verdict(port, cert), { verified: false, refusal: 'CERT_REVOKED' }, 'the certificate stays revoked')
})

// Found: ClientRevocation#ask reads one distribution point only, the first fetchable one
// (`crlUrls.find(url => this.#fetchable(url))`): RFC 5280 4.2.1.13 names several as alternatives, and OpenSSL would
// take the CRL from any. Whoever can keep the first from answering (a refused connection, an HTTP error) decides
// the outcome: failMode open lets a revoked certificate through, failMode closed refuses a good one, while the second
// distribution point serves the issuer's current CRL.
t.test('several distribution points, the first one failing: the second one\'s CRL decides', async t => {
  const down = await pointServing(t, response => { response.writeHead(503).end() })
  const up = await pointServing(t, response => { response.end(Buffer.alloc(0)) })
  const revoked = await intermediate.issue({ usage: 'client', crlDistributionPoints: [down.url, up.url] })
  const good = await intermediate.issue({ usage: 'client', crlDistributionPoints: [down.url, up.url] })
  intermediate.revoke(revoked)
  const crl = await crlOf(intermediate)
  up.serve(response => { response.end(crl) })

  t.test('failMode open: the revoked certificate is refused', async t => {
    const { port } = await start(t, { crlDistributionPoints: true, failMode: 'open' })
    t.same(await verdict(port, revoked), { verified: false, refusal: 'CERT_REVOKED' })
  })
  t.test('failMode closed: the good certificate is served', async t => {
    const { port } = await start(t, { crlDistributionPoints: true })
    t.same(await verdict(port, good), { verified: true, refusal: null })
  })
})

// Found: an open connection is judged again only when a CRL downloaded again revokes its certificate
// (ClientRevocation#apply); when the CRL in force goes past its nextUpdate and no new one can be downloaded, nothing
// judges the open connections (the failing #refresh only schedules a retry). Whoever keeps the distribution point from
// answering keeps a connection open for good, past the moment failMode closed refuses every new connection of the same
// certificate; a CRL file of the trust going stale withdraws open connections (CRL_HAS_EXPIRED).
t.test('failMode closed: an open connection whose CRL went stale, with no new one to be had, is no longer served as verified', async t => {
  const point = await pointServing(t, response => { response.end(Buffer.alloc(0)) })
  const cert = await intermediate.issue({ usage: 'client', crlDistributionPoints: [point.url] })
  // Past its nextUpdate by less than the five minutes of skew allowed: current for another few seconds.
  const staleAt = Date.now() + 3000
  const crl = await crlOf(intermediate, { thisUpdate: new Date(Date.now() - 3_600_000), nextUpdate: new Date(staleAt - 5 * 60_000) })
  point.serve(response => { response.end(crl) })
  const { port } = await start(t, { crlDistributionPoints: true, crlRefreshMs: 1000 })
  const kept = await keptAlive(t, port, root.certificate, cert)
  t.same(JSON.parse(await kept.ask('/verdict')), { verified: true, refusal: null })
  // The distribution point stops answering; the CRL in force goes stale.
  point.serve(response => { response.writeHead(503).end() })
  await until(() => Date.now() > staleAt + 1000, 'the CRL in force past its nextUpdate and the skew')
  t.same(await verdict(port, cert), { verified: false, refusal: 'ERR_MTLS_REVOCATION_UNKNOWN' }, 'a new connection is refused')
  const answer = await kept.ask('/verdict')
  t.not(answer, JSON.stringify({ verified: true, refusal: null }), 'the open connection is not served as verified either')
})

t.test('HTTP/2, require mode: no request of a revoked certificate reaches a route while its CRL is being downloaded', async t => {
  let release: () => void = () => {}
  const point = await pointServing(t, response => { response.end(Buffer.alloc(0)) })
  const cert = await intermediate.issue({ usage: 'client', crlDistributionPoints: [point.url] })
  intermediate.revoke(cert)
  const crl = await crlOf(intermediate)
  point.serve(response => { release = () => { response.end(crl) } })
  const serverTls = await loadServerTls({ cert: serverCert.chain, key: serverCert.key, ca: root.certificate, mode: 'require' })
  let handled = 0
  const { app, port } = await startFastifyServer(t, { https: { ...serverTls.httpsOptions, allowHTTP1: true }, fastify: { http2: true } }, async app => {
    await app.register(fastifyMtls, { tls: serverTls, revocation: { crlDistributionPoints: true } })
    app.get('/verdict', async () => { handled++; return {} })
  })
  const session = http2.connect(`https://localhost:${port}`, { ca: root.certificate, cert: cert.chain, key: cert.key })
  t.teardown(() => session.destroy())
  session.on('error', () => {})
  const answers = Promise.all([0, 1, 2].map(async () => await new Promise<string>(resolve => {
    const stream = session.request({ ':path': '/verdict' })
    let status = 0
    stream.on('response', headers => { status = Number(headers[':status']) })
    stream.on('data', () => {})
    // Ended or reset without an answer: the session was closed.
    const ended = (): void => { resolve(status === 0 ? '(closed)' : `HTTP ${status}`) }
    stream.on('end', ended)
    stream.on('error', ended)
    stream.on('close', ended)
  })))
  await until(() => point.requests() === 1 && app.mtls.status().revocation?.ocsp.pending === 1, 'the download under way')
  release()
  t.same(await answers, ['(closed)', '(closed)', '(closed)'])
  t.equal(handled, 0, 'no request reached the route')
})

// Found: a session resumed on a sibling server (node:cluster workers sharing a ticketKeysFile, examples/cluster) whose
// trust holds the root alone shows no chain there (ConnectionRecord#chains: nothing recalled in this process, and the
// trust lacks the intermediate the client sent on its full handshake), so ClientRevocation#check asks about the leaf
// alone with no issuer (#askCrl: revocationCodes.noIssuer): failMode closed refuses a good certificate, failMode open
// lets a revoked one through, where a full handshake would have been judged by its CRL. (.taprc takes this path for
// unreachable.)
// Not fixed yet (todo): the sibling never saw the chain, and nothing in the resumed session carries the issuer; see
// the closing note of the session that found it.
t.test('a session resumed on a sibling server sharing the ticket keys is judged by its certificate\'s CRL', { todo: 'a resumed session carries no chain, and a sibling that never saw the client\'s intermediate has no issuer to check the CRL with' }, async t => {
  // The clients' CA: not the server's own intermediate, so only what the client sends shows it.
  const clientCa = await root.createIntermediate({ commonName: 'crl dp outsider client CA' })
  const point = await pointServing(t, response => { response.end(Buffer.alloc(0)) })
  const initial = await crlOf(clientCa)
  point.serve(response => { response.end(initial) })
  const ticketKeys = randomBytes(48)
  const sibling = async (t: Teardown, failMode: 'open' | 'closed'): Promise<[number, number]> => await Promise.all([0, 1].map(async () =>
    (await startVerdictServer(t, { cert: serverCert.chain, key: serverCert.key, ca: root.certificate, mode: 'optional', ticketKeys }, { revocation: { crlDistributionPoints: true, failMode } })).port)) as [number, number]
  const resumedOn = async (port: number, cert: IssuedCertificate, session: Buffer): Promise<unknown> => {
    const kept = await keptAlive(t, port, root.certificate, cert, session)
    t.ok(kept.socket.isSessionReused(), 'the session resumed')
    return JSON.parse(await kept.ask('/verdict'))
  }

  t.test('failMode closed: a good certificate resumed on the sibling is served', async t => {
    const good = await clientCa.issue({ usage: 'client', crlDistributionPoints: [point.url] })
    const [first, second] = await sibling(t, 'closed')
    const session = await sessionFrom(first, good, root.certificate)
    t.same(await resumedOn(second, good, session), { verified: true, refusal: null })
  })
  t.test('failMode open: a certificate revoked since its full handshake is refused on the sibling', async t => {
    const revoked = await clientCa.issue({ usage: 'client', crlDistributionPoints: [point.url] })
    const [first, second] = await sibling(t, 'open')
    const session = await sessionFrom(first, revoked, root.certificate)
    clientCa.revoke(revoked)
    const crl = await crlOf(clientCa)
    point.serve(response => { response.end(crl) })
    t.same(await resumedOn(second, revoked, session), { verified: false, refusal: 'CERT_REVOKED' })
  })
})

// Found: the first download of a distribution point is checked against the certificate that asked for it
// (ClientRevocation#crlAt: crlStatus inside #fromResponder), so a certificate of another trusted CA naming the same
// URL (a CA's renewed key under the same name and URL, a partner CA copying the URL) fails the check and marks the
// distribution point down (#down: a backoff of 1 s doubling to 60 s) for every certificate: meanwhile a revoked
// certificate of the CA that does publish there goes through with failMode open (and a good one is refused with
// closed), without the distribution point being asked.
t.test('a certificate of another CA naming the same distribution point does not make it "down" for the CA that publishes there', async t => {
  const other = await root.createIntermediate({ commonName: 'crl dp outsider other CA' })
  const point = await pointServing(t, response => { response.end(Buffer.alloc(0)) })
  const stranger = await other.issue({ usage: 'client', crlDistributionPoints: [point.url] })
  const revoked = await intermediate.issue({ usage: 'client', crlDistributionPoints: [point.url] })
  intermediate.revoke(revoked)
  const crl = await crlOf(intermediate)
  point.serve(response => { response.end(crl) })
  const { port } = await start(t, { crlDistributionPoints: true, failMode: 'open', timeoutMs: 60_000 })
  // The stranger's certificate cannot be judged by that CRL: let through (failMode open), as documented.
  t.same(await verdict(port, stranger), { verified: true, refusal: null })
  t.same(await verdict(port, revoked), { verified: false, refusal: 'CERT_REVOKED' })
})
