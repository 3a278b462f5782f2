// Revocation of client certificates by the CRL their distribution point names (`revocation: { crlDistributionPoints:
// true }`): CRLs signed by mtls-pki, served over HTTP by a Node server the test runs, real TLS clients.
import { createServer as createHttpServer, type ServerResponse } from 'node:http'
import t from 'tap'
import { createRootCa, type IssuedCertificate } from 'mtls-pki'
import { closedPort, until } from 'mtls-test-support'
import { readPemBlocks } from 'mtls-core/internal'
import type { RevocationOptions } from '../src/index.js'
import { attempt, capturedLogger, keptAlive, startVerdictServer, type Teardown } from './helpers.js'

const root = await createRootCa({ commonName: 'crl dp root' })
const intermediate = await root.createIntermediate({ commonName: 'crl dp CA' })
const serverCert = await intermediate.issue({ dnsNames: ['localhost'], ips: ['127.0.0.1'], usage: 'server' })

/** An HTTP server on 127.0.0.1 serving what `serve` answers at every path, counting the requests. */
async function crlServer (t: Teardown, serve: (response: ServerResponse) => void): Promise<{ url: string, requests: () => number }> {
  let requests = 0
  const server = createHttpServer((request, response) => {
    requests++
    serve(response)
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => { await new Promise<void>(resolve => { server.closeAllConnections(); server.close(() => { resolve() }) }) })
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}/ca.crl`, requests: () => requests }
}

/** A distribution point serving the intermediate's CRL, signed again on each `publish()`. */
async function distributionPoint (t: Teardown, ca = intermediate, options: { nextUpdate?: Date } = {}): Promise<{ url: string, requests: () => number, publish: () => Promise<void> }> {
  let der = Buffer.alloc(0)
  const served = await crlServer(t, response => { response.writeHead(200, { 'content-type': 'application/pkix-crl' }).end(der) })
  const publish = async (): Promise<void> => { der = Buffer.from((readPemBlocks(await ca.createCrl(options))[0] as { der: Uint8Array }).der) }
  await publish()
  return { ...served, publish }
}

async function clientCert (...crlDistributionPoints: string[]): Promise<IssuedCertificate> {
  return await intermediate.issue({ commonName: 'client', usage: 'client', crlDistributionPoints })
}

async function start (t: Teardown, mode: 'require' | 'optional', revocation: RevocationOptions = { crlDistributionPoints: true }, logger?: unknown): Promise<Awaited<ReturnType<typeof startVerdictServer>>> {
  const started = await startVerdictServer(t, { cert: serverCert.chain, key: serverCert.key, ca: root.certificate, mode }, { revocation }, logger === undefined ? {} : { logger })
  return started
}

const ask = async (port: number, cert: IssuedCertificate): Promise<Awaited<ReturnType<typeof attempt>>> =>
  await attempt(port, { ca: root.certificate, chain: cert.chain, key: cert.key }, {}, '/verdict')

t.test('good certificates are served; one download of the CRL serves every certificate that names it', async t => {
  const point = await distributionPoint(t)
  const [a, b] = [await clientCert(point.url), await clientCert(point.url)] as [IssuedCertificate, IssuedCertificate]
  const { app, port } = await start(t, 'require')
  const first = await ask(port, a)
  t.equal(first.status, 200)
  t.same(JSON.parse(first.body), { verified: true, refusal: null })
  t.equal((await ask(port, b)).status, 200)
  t.equal((await ask(port, a)).status, 200)
  t.equal(point.requests(), 1, 'one download for both certificates and every connection')
  const crl = app.mtls.status().revocation?.crl
  t.equal(crl?.distributionPoints.length, 1)
  t.match(crl?.distributionPoints[0], { url: point.url, revoked: 0, thisUpdate: Date, fetchedAt: Date, nextFetchAt: Date })
  t.equal(crl?.lastError, null)
})

t.test('require mode: a certificate the CRL lists is refused and counted; optional mode: no identity (CERT_REVOKED)', async t => {
  const point = await distributionPoint(t)
  const revoked = await clientCert(point.url)
  intermediate.revoke(revoked, { reason: 'keyCompromise' })
  await point.publish()
  const logger = capturedLogger()
  const strict = await start(t, 'require', { crlDistributionPoints: true }, logger.logger)
  t.equal((await ask(strict.port, revoked)).status, null, 'closed before any request is answered')
  t.equal(strict.handled(), 0)
  t.equal(strict.app.mtls.stats().failures.revoked, 1)
  t.equal((await ask(strict.port, revoked)).status, null, 'refused again, from the cache')
  t.equal(point.requests(), 1)
  t.equal(logger.lines.filter(line => /lists the certificate as revoked/.test(String(line.msg))).length, 1, 'one line for the certificate')
  t.equal((await ask(strict.port, await clientCert(point.url))).status, 200, 'a good client is still served')

  const lenient = await start(t, 'optional')
  const seen = await ask(lenient.port, revoked)
  t.equal(seen.status, 200)
  t.same(JSON.parse(seen.body), { verified: false, refusal: 'CERT_REVOKED' })
})

t.test('a CRL downloaded again that revokes a certificate closes its open connection (require) or withdraws it (optional)', async t => {
  const point = await distributionPoint(t)
  for (const mode of ['require', 'optional'] as const) {
    const cert = await clientCert(point.url)
    const other = await clientCert(point.url)
    const { app, port } = await start(t, mode, { crlDistributionPoints: true, crlRefreshMs: 1000 })
    const doomed = await keptAlive(t, port, root.certificate, cert)
    const kept = await keptAlive(t, port, root.certificate, other)
    t.match(await doomed.ask('/verdict'), /"verified":true/)
    t.match(await kept.ask('/verdict'), /"verified":true/)
    const fetched = point.requests()
    intermediate.revoke(cert)
    await point.publish()
    await until(() => app.mtls.stats().failures.revoked === 1, 'the revoked certificate refused after the next download')
    if (mode === 'require') {
      await until(() => doomed.closed(), 'the revoked certificate\'s connection closed')
      t.ok(doomed.closed(), `${mode}: the revoked certificate's open connection is closed`)
    } else {
      t.match(await doomed.ask('/verdict'), /"verified":false,"refusal":"CERT_REVOKED"/, `${mode}: the open connection stays, without its certificate`)
    }
    t.ok(point.requests() > fetched, 'downloaded again on its schedule')
    t.match(await kept.ask('/verdict'), /"verified":true/, 'the other certificate\'s connection is untouched')
    t.equal((await ask(port, cert)).status, mode === 'require' ? null : 200, 'and its next connection is refused')
  }
})

t.test('a CRL that does not verify gives no status: failMode closed refuses, open lets through; lastError says why', async t => {
  // Another CA under the same name: its CRL names the right issuer, but not the issuer's key (identifier or signature).
  const impostor = await createRootCa({ commonName: 'crl dp CA' })
  const point = await distributionPoint(t, impostor)
  const cert = await clientCert(point.url)
  const closed = await start(t, 'optional')
  t.same(JSON.parse((await ask(closed.port, cert)).body), { verified: false, refusal: 'ERR_MTLS_REVOCATION_UNKNOWN' })
  t.match(closed.app.mtls.status().revocation?.crl?.lastError, { code: 'ERR_MTLS_CRL_INVALID', url: point.url, message: /authority key identifier|signature/ })
  t.equal(closed.app.mtls.status().revocation?.crl?.distributionPoints.length, 0, 'a CRL that does not verify is not kept')
  const open = await start(t, 'optional', { crlDistributionPoints: true, failMode: 'open' })
  t.same(JSON.parse((await ask(open.port, cert)).body), { verified: true, refusal: null })
})

t.test('a CRL past its nextUpdate, garbage, an HTTP error or one over maxCrlBytes gives no status', async t => {
  const stale = await distributionPoint(t, intermediate, { nextUpdate: new Date(Date.now() - 3_600_000) })
  const garbage = await crlServer(t, response => { response.end('not a CRL') })
  const failing = await crlServer(t, response => { response.writeHead(503).end() })
  const big = await distributionPoint(t)
  const cases = [
    [stale.url, {}, 'ERR_MTLS_CRL_INVALID', /nextUpdate/],
    [garbage.url, {}, 'ERR_MTLS_CRL_INVALID', /neither DER nor one PEM/],
    [failing.url, {}, 'ERR_MTLS_CRL_FETCH', /HTTP 503/],
    [big.url, { maxCrlBytes: 100 }, 'ERR_MTLS_CRL_FETCH', /over 100 bytes/]
  ] as const
  for (const [url, extra, code, message] of cases) {
    const { app, port } = await start(t, 'optional', { crlDistributionPoints: true, ...extra })
    t.same(JSON.parse((await ask(port, await clientCert(url))).body), { verified: false, refusal: 'ERR_MTLS_REVOCATION_UNKNOWN' }, code)
    t.match(app.mtls.status().revocation?.crl?.lastError, { code, message })
  }
})

t.test('a distribution point that is down: refused with failMode closed, served with open; the PEM form is read too', async t => {
  const down = `http://127.0.0.1:${await closedPort()}/ca.crl`
  const cert = await clientCert(down)
  const closed = await start(t, 'require')
  t.equal((await ask(closed.port, cert)).status, null)
  t.equal(closed.app.mtls.stats().failures.other, 1, 'no status learnt: counted in other')
  const open = await start(t, 'require', { crlDistributionPoints: true, failMode: 'open' })
  t.equal((await ask(open.port, cert)).status, 200)

  const pem = await crlServer(t, response => { intermediate.createCrl().then(text => response.end(text), () => response.destroy()) })
  const { port } = await start(t, 'require')
  t.equal((await ask(port, await clientCert(pem.url))).status, 200)
})

t.test('an ldap: distribution point beside an http: one: the http: one is read; ldap: alone is never asked', async t => {
  const point = await distributionPoint(t)
  const { port } = await start(t, 'optional')
  const both = await ask(port, await clientCert('ldap://directory.example/cn=crl', point.url))
  t.same(JSON.parse(both.body), { verified: true, refusal: null })
  t.equal(point.requests(), 1)
  const ldapOnly = await ask(port, await clientCert('ldap://directory.example/cn=crl'))
  t.same(JSON.parse(ldapOnly.body), { verified: false, refusal: 'ERR_MTLS_REVOCATION_UNKNOWN' })
})

t.test('OCSP and CRL together: a responder that is down leaves the decision to the CRL', async t => {
  const point = await distributionPoint(t)
  const ocspDown = `http://127.0.0.1:${await closedPort()}/`
  const good = await intermediate.issue({ commonName: 'client', usage: 'client', ocspUrl: ocspDown, crlDistributionPoints: [point.url] })
  const revoked = await intermediate.issue({ commonName: 'client', usage: 'client', ocspUrl: ocspDown, crlDistributionPoints: [point.url] })
  intermediate.revoke(revoked)
  await point.publish()
  const { app, port } = await start(t, 'optional', { ocsp: true, crlDistributionPoints: true })
  t.same(JSON.parse((await ask(port, good)).body), { verified: true, refusal: null })
  t.same(JSON.parse((await ask(port, revoked)).body), { verified: false, refusal: 'CERT_REVOKED' })
  t.match(app.mtls.status().revocation?.ocsp.lastError, { code: 'ERR_MTLS_OCSP_FETCH' }, 'the OCSP failure is on record')
})

t.test('ten concurrent first connections of five certificates naming one distribution point make one download', async t => {
  const point = await distributionPoint(t)
  const certs = await Promise.all(Array.from({ length: 5 }, async () => await clientCert(point.url)))
  const { port } = await start(t, 'require')
  const results = await Promise.all(certs.flatMap(cert => [ask(port, cert), ask(port, cert)]))
  t.same(results.map(result => result.status), Array(10).fill(200))
  t.equal(point.requests(), 1)
})

t.test('failMode open: a CRL gone stale with no newer one lets its certificates through, open connections kept, and says so once', async t => {
  let status = 200
  // Past its nextUpdate by less than the five minutes of skew allowed: current for about two more seconds.
  const staleAt = Date.now() + 2000
  const der = Buffer.from((readPemBlocks(await intermediate.createCrl({ thisUpdate: new Date(Date.now() - 3_600_000), nextUpdate: new Date(staleAt - 5 * 60_000) }))[0] as { der: Uint8Array }).der)
  const point = await crlServer(t, response => { response.writeHead(status).end(status === 200 ? der : undefined) })
  const cert = await clientCert(point.url)
  const logger = capturedLogger()
  const { app, port } = await start(t, 'optional', { crlDistributionPoints: true, failMode: 'open' }, logger.logger)
  const kept = await keptAlive(t, port, root.certificate, cert)
  t.match(await kept.ask('/verdict'), /"verified":true/)
  status = 503
  await until(() => app.mtls.status().revocation?.crl?.distributionPoints.length === 0, 'the stale CRL dropped')
  t.match(await kept.ask('/verdict'), /"verified":true/, 'the open connection keeps its verdict')
  t.same(JSON.parse((await ask(port, cert)).body), { verified: true, refusal: null }, 'a new connection is let through')
  t.equal(logger.lines.filter(line => /is past its nextUpdate and no newer one could be downloaded; its certificates are let through/.test(String(line.msg))).length, 1)
})
