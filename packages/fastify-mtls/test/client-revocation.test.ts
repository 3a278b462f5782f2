// Revocation of client certificates at their OCSP responder (`revocation: { ocsp: true }`), against the real OpenSSL
// responder mtls-pki starts, with real TLS clients.
import { writeFile } from 'node:fs/promises'
import { createServer as createHttpServer } from 'node:http'
import { createServer } from 'node:net'
import t from 'tap'
import { createRootCa, type IssuedCertificate } from 'mtls-pki'
import { closedPort, hangLimit, until } from 'mtls-test-support'
import type { RevocationOptions } from '../src/index.js'
import { attempt, capturedLogger, sessionFrom, startVerdictServer, type Teardown } from './helpers.js'

const root = await createRootCa({ commonName: 'revocation root' })
const intermediate = await root.createIntermediate({ commonName: 'revocation CA' })
const responder = await intermediate.startOcspResponder({ delegated: true })
t.teardown(responder.close)
const serverCert = await intermediate.issue({ dnsNames: ['localhost'], ips: ['127.0.0.1'], usage: 'server' })

async function clientCert (ocspUrl: string = responder.url): Promise<IssuedCertificate> {
  const cert = await intermediate.issue({ commonName: 'client', usage: 'client', ocspUrl })
  await responder.refresh()
  return cert
}

async function start (t: Teardown, mode: 'require' | 'optional', revocation: RevocationOptions = { ocsp: true }, logger?: unknown): Promise<Awaited<ReturnType<typeof startVerdictServer>>> {
  return await startVerdictServer(t, { cert: serverCert.chain, key: serverCert.key, ca: root.certificate, mode }, { revocation }, logger === undefined ? {} : { logger })
}

const as = (cert: IssuedCertificate): { ca: string, chain: string, key: string } => ({ ca: root.certificate, chain: cert.chain, key: cert.key })
const ask = async (port: number, cert: IssuedCertificate): Promise<Awaited<ReturnType<typeof attempt>>> => await attempt(port, as(cert), {}, '/verdict')

t.test('a good certificate is served; its answer is cached: the next connection asks the responder nothing', async t => {
  const cert = await clientCert()
  const { app, port } = await start(t, 'require')
  const before = responder.answered
  const first = await ask(port, cert)
  t.equal(first.status, 200)
  t.same(JSON.parse(first.body), { verified: true, refusal: null })
  t.equal(responder.answered, before + 1, 'one OCSP request: the leaf (the intermediate names no responder)')
  t.match(app.mtls.status().revocation, { ocsp: { cached: 2, pending: 0, responders: 1, lastError: null } })
  t.equal((await ask(port, cert)).status, 200)
  t.equal(responder.answered, before + 1, 'the second connection is judged from the cache')
  // The cost of the cache: a revocation after the first lookup is seen only once its answer's nextUpdate has passed
  // (mtls-pki's responder gives at least a minute, so that wait is documented in the README, not waited for here).
  intermediate.revoke(cert)
  await responder.refresh()
  t.equal((await ask(port, cert)).status, 200, 'revoked since: still served until the cached good answer expires')
  t.equal(responder.answered, before + 1)
})

t.test('require mode: a certificate revoked at its responder is refused, counted and logged once; later connections are closed at the handshake', async t => {
  const cert = await clientCert()
  intermediate.revoke(cert, { reason: 'keyCompromise' })
  await responder.refresh()
  const logger = capturedLogger()
  const { app, port, handled } = await start(t, 'require', { ocsp: true }, logger.logger)
  const before = responder.answered
  const refused = await ask(port, cert)
  t.equal(refused.status, null, 'no answer: the connection is closed')
  t.equal(handled(), 0, 'the handler never ran')
  t.equal(app.mtls.stats().failures.revoked, 1)
  const again = await ask(port, cert)
  t.equal(again.status, null)
  t.equal(responder.answered, before + 1, 'the second refusal comes from the cache')
  t.equal(app.mtls.stats().failures.revoked, 2)
  t.equal(handled(), 0)
  const lines = logger.lines.filter(line => /OCSP responder .* says the certificate is revoked \(keyCompromise\)/.test(String(line.msg)))
  t.equal(lines.length, 1, 'one line for the certificate, not one per connection')
  t.equal(lines[0]?.fingerprint256, cert.fingerprint256.replace(/:/g, '').toLowerCase(), 'the line names the certificate by its fingerprint')
  t.equal((await ask(port, await clientCert())).status, 200, 'a good client is still served')
})

t.test('optional mode: a revoked certificate gets no identity (CERT_REVOKED), a good one does', async t => {
  const cert = await clientCert()
  intermediate.revoke(cert)
  await responder.refresh()
  const { app, port } = await start(t, 'optional')
  const refused = await ask(port, cert)
  t.equal(refused.status, 200)
  t.same(JSON.parse(refused.body), { verified: false, refusal: 'CERT_REVOKED' })
  t.equal(app.mtls.stats().failures.revoked, 1)
  t.equal(app.mtls.stats().unverified, 1)
  const cached = await ask(port, cert)
  t.same(JSON.parse(cached.body), { verified: false, refusal: 'CERT_REVOKED' }, 'from the cache, at the handshake')
  t.equal(app.mtls.stats().failures.revoked, 2)
  const good = await ask(port, await clientCert())
  t.same(JSON.parse(good.body), { verified: true, refusal: null })
})

t.test('a resumed session is judged from the cache by its certificate: good stays good, revoked stays refused', async t => {
  const good = await clientCert()
  const revoked = await clientCert()
  intermediate.revoke(revoked)
  await responder.refresh()
  // Optional mode: a refused connection goes on, and receives a ticket, as any.
  const { app, port } = await start(t, 'optional')
  const goodSession = await sessionFrom(port, good, root.certificate)
  const revokedSession = await sessionFrom(port, revoked, root.certificate)
  const answered = responder.answered
  const resumedGood = await attempt(port, as(good), { session: goodSession }, '/verdict')
  t.equal(resumedGood.reused, true)
  t.same(JSON.parse(resumedGood.body), { verified: true, refusal: null })
  const resumedRevoked = await attempt(port, as(revoked), { session: revokedSession }, '/verdict')
  t.equal(resumedRevoked.reused, true)
  t.same(JSON.parse(resumedRevoked.body), { verified: false, refusal: 'CERT_REVOKED' })
  t.equal(responder.answered, answered, 'both from the cache')
  t.equal(app.mtls.stats().resumed, 2)
})

t.test('responder down, failMode closed: refused with a coded error; failMode open: served, one warning per outage', async t => {
  const down = `http://127.0.0.1:${await closedPort()}/`
  const cert = await clientCert(down)
  const closed = await start(t, 'require')
  t.equal((await ask(closed.port, cert)).status, null)
  t.equal(closed.app.mtls.stats().failures.other, 1, 'counted as other: not the certificate\'s fault')
  t.match(closed.app.mtls.status().revocation?.ocsp.lastError, { code: 'ERR_MTLS_OCSP_FETCH', url: down, message: /cannot fetch/ })
  t.equal(closed.app.mtls.status().revocation?.ocsp.cached, 1, 'only the intermediate (no responder) is cached: a failure is not')

  const optional = await start(t, 'optional')
  t.same(JSON.parse((await ask(optional.port, cert)).body), { verified: false, refusal: 'ERR_MTLS_REVOCATION_UNKNOWN' })

  const logger = capturedLogger()
  const open = await start(t, 'require', { ocsp: true, failMode: 'open' }, logger.logger)
  for (let i = 0; i < 3; i++) t.same(JSON.parse((await ask(open.port, cert)).body), { verified: true, refusal: null }, `connection ${i + 1} served`)
  t.equal(logger.lines.filter(line => /the OCSP responder gives no status/.test(String(line.msg))).length, 1, 'one line for the outage')
  t.match(open.app.mtls.status().revocation?.ocsp.lastError, { code: 'ERR_MTLS_OCSP_FETCH' })
})

t.test('20 concurrent connections of one certificate make one OCSP request, and all wait for it', async t => {
  const cert = await clientCert()
  const { port, handled } = await start(t, 'require')
  const before = responder.answered
  const results = await Promise.all(Array.from({ length: 20 }, async () => await ask(port, cert)))
  t.same(results.map(result => result.status), Array(20).fill(200))
  t.equal(responder.answered, before + 1)
  t.equal(handled(), 20)
})

t.test('an https responder is not asked without allowHttps: refused with a clear error', async t => {
  const cert = await clientCert('https://127.0.0.1:9/ocsp')
  const { app, port } = await start(t, 'require')
  t.equal((await ask(port, cert)).status, null)
  t.match(app.mtls.status().revocation?.ocsp.lastError, { code: 'ERR_MTLS_REVOCATION_URL', message: /"https:\/\/127\.0\.0\.1:9\/ocsp" is not asked: https: only with revocation\.allowHttps/ })
  t.equal(app.mtls.status().revocation?.ocsp.responders, 0, 'no responder was asked')
  const allowed = await start(t, 'require', { ocsp: true, allowHttps: true, timeoutMs: 2000 })
  t.equal((await ask(allowed.port, cert)).status, null, 'allowed, but nothing answers there')
  t.match(allowed.app.mtls.status().revocation?.ocsp.lastError, { code: 'ERR_MTLS_OCSP_FETCH' })
})

t.test('maxResponders caps the distinct responders asked', async t => {
  const other = await intermediate.startOcspResponder()
  t.teardown(other.close)
  const first = await clientCert()
  const second = await clientCert(other.url)
  await other.refresh()
  const { app, port } = await start(t, 'require', { ocsp: true, maxResponders: 1 })
  t.equal((await ask(port, first)).status, 200)
  const answered = other.answered
  t.equal((await ask(port, second)).status, null)
  t.equal(other.answered, answered, 'the second responder was not asked')
  t.match(app.mtls.status().revocation?.ocsp, { responders: 1, lastError: { code: 'ERR_MTLS_REVOCATION_RESPONDER_LIMIT', message: /beyond the 1 asked already/ } })
})

t.test('the wait is bounded: a responder that never answers is given up after timeoutMs', async t => {
  const silent = createServer(() => {})
  await new Promise<void>(resolve => silent.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { silent.close(); silent.unref() })
  const cert = await clientCert(`http://127.0.0.1:${(silent.address() as { port: number }).port}/`)
  const { app, port } = await start(t, 'optional', { ocsp: true, timeoutMs: 300 })
  t.same(JSON.parse((await ask(port, cert)).body), { verified: false, refusal: 'ERR_MTLS_REVOCATION_UNKNOWN' })
  t.match(app.mtls.status().revocation?.ocsp.lastError, { message: /no answer within 300 ms/ })
  await until(() => app.mtls.status().revocation?.ocsp.pending === 0, 'no lookup left pending')
})

t.test('a responder that answers unknown: refused with failMode closed, let through with open, logged once per certificate', async t => {
  const cert = await clientCert()
  // The responder's index without the certificate: OpenSSL answers "unknown" for a serial it does not hold.
  await writeFile(responder.indexFile, '')
  t.teardown(async () => { await responder.refresh() })
  const logger = capturedLogger()
  const closed = await start(t, 'optional', { ocsp: true }, logger.logger)
  t.same(JSON.parse((await ask(closed.port, cert)).body), { verified: false, refusal: 'ERR_MTLS_REVOCATION_UNKNOWN' })
  t.same(JSON.parse((await ask(closed.port, cert)).body), { verified: false, refusal: 'ERR_MTLS_REVOCATION_UNKNOWN' }, 'cached until nextUpdate')
  t.equal(logger.lines.filter(line => /says the certificate is unknown: refused/.test(String(line.msg))).length, 1)
  const open = await start(t, 'optional', { ocsp: true, failMode: 'open' }, logger.logger)
  t.same(JSON.parse((await ask(open.port, cert)).body), { verified: true, refusal: null })
  t.equal(logger.lines.filter(line => /says the certificate is unknown: let through \(failMode open\)/.test(String(line.msg))).length, 1)
})

t.test('a URL scheme OCSP does not use is never asked; failMode open lets the certificate through and says so once', async t => {
  const cert = await clientCert('ldap://127.0.0.1/ocsp')
  const logger = capturedLogger()
  const { app, port } = await start(t, 'optional', { ocsp: true, failMode: 'open' }, logger.logger)
  for (let i = 0; i < 2; i++) t.same(JSON.parse((await ask(port, cert)).body), { verified: true, refusal: null })
  t.match(app.mtls.status().revocation?.ocsp.lastError, { code: 'ERR_MTLS_REVOCATION_URL', message: /is not asked: http: URLs only/ })
  t.equal(logger.lines.filter(line => /is not asked: http: URLs only; let through \(failMode open\)/.test(String(line.msg))).length, 1)
})

t.test('a responder that comes back is asked again after its backoff, and says so in one line', async t => {
  // A relay to the real responder that fails its first request.
  let requests = 0
  const relay = createHttpServer((request, response) => {
    const chunks: Buffer[] = []
    request.on('data', (chunk: Buffer) => chunks.push(chunk))
    request.on('end', () => {
      if (requests++ === 0) {
        response.writeHead(503).end()
        return
      }
      fetch(responder.url, { method: 'POST', headers: { 'content-type': 'application/ocsp-request' }, body: Buffer.concat(chunks) })
        .then(async answer => { response.writeHead(answer.status).end(Buffer.from(await answer.arrayBuffer())) })
        .catch(() => { response.writeHead(502).end() })
    })
  })
  await new Promise<void>(resolve => relay.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { relay.close() })
  const cert = await clientCert(`http://127.0.0.1:${(relay.address() as { port: number }).port}/`)
  const logger = capturedLogger()
  const { app, port } = await start(t, 'optional', { ocsp: true }, logger.logger)
  t.same(JSON.parse((await ask(port, cert)).body), { verified: false, refusal: 'ERR_MTLS_REVOCATION_UNKNOWN' })
  t.match(app.mtls.status().revocation?.ocsp.lastError, { code: 'ERR_MTLS_OCSP_FETCH', message: /HTTP 503/ })
  // Within the backoff the responder is not asked: the answer is its last failure, at once.
  let verdict = JSON.parse((await ask(port, cert)).body) as { verified: boolean }
  t.equal(requests, 1, 'not asked again within its backoff')
  const limit = Date.now() + hangLimit(30_000)
  while (!verdict.verified && Date.now() < limit) {
    await new Promise(resolve => setTimeout(resolve, 100)) // polling for the end of a 1 s backoff
    verdict = JSON.parse((await ask(port, cert)).body) as { verified: boolean }
  }
  t.equal(verdict.verified, true, 'served once the responder answers')
  t.equal(requests, 2)
  t.equal(app.mtls.status().revocation?.ocsp.lastError, null)
  t.equal(logger.lines.filter(line => /the OCSP responder answers again after 1 failed attempt$/.test(String(line.msg))).length, 1)
})
