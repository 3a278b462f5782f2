// Attacks on the OCSP check of client certificates: a responder that answers "good" with another CA's signature, a
// responder that stalls (it must hold that connection's requests, not the server), a responder that sends 10 MB.
import { createServer as createHttpServer } from 'node:http'
import { createServer } from 'node:net'
import t from 'tap'
import { createRootCa, type IssuedCertificate } from 'mtls-pki'
import { until } from 'mtls-test-support'
import type { RevocationOptions } from '../../src/index.js'
import { attempt, startVerdictServer, type Teardown } from '../helpers.js'

const root = await createRootCa({ commonName: 'revocation attack root' })
const intermediate = await root.createIntermediate({ commonName: 'revocation attack CA' })
const responder = await intermediate.startOcspResponder()
t.teardown(responder.close)
const serverCert = await intermediate.issue({ dnsNames: ['localhost'], ips: ['127.0.0.1'], usage: 'server' })

async function clientCert (ocspUrl: string): Promise<IssuedCertificate> {
  const cert = await intermediate.issue({ commonName: 'client', usage: 'client', ocspUrl })
  await responder.refresh()
  return cert
}
async function start (t: Teardown, revocation: RevocationOptions): Promise<Awaited<ReturnType<typeof startVerdictServer>>> {
  return await startVerdictServer(t, { cert: serverCert.chain, key: serverCert.key, ca: root.certificate, mode: 'optional' }, { revocation })
}
const ask = async (port: number, cert: IssuedCertificate): Promise<{ verified: boolean, refusal: string | null }> =>
  JSON.parse((await attempt(port, { ca: root.certificate, chain: cert.chain, key: cert.key }, {}, '/verdict')).body) as { verified: boolean, refusal: string | null }

t.test('a responder signing with another CA\'s key answers "good": the answer is refused, never taken as good', async t => {
  // OpenSSL's responder over this CA's index (so the CertID matches), signing with a CA that neither issued the
  // certificate nor was delegated by its issuer: what an attacker on the path to the responder can send.
  const otherRoot = await createRootCa({ commonName: 'attacker root' })
  const forger = await intermediate.startOcspResponder({ signer: { certificate: otherRoot.certificate, key: otherRoot.key } })
  t.teardown(forger.close)
  const cert = await clientCert(forger.url)
  await forger.refresh()
  const { app, port } = await start(t, { ocsp: true })
  t.same(await ask(port, cert), { verified: false, refusal: 'ERR_MTLS_REVOCATION_UNKNOWN' })
  t.equal(forger.answered, 1, 'the forger was asked')
  t.match(app.mtls.status().revocation?.ocsp.lastError, { code: 'ERR_MTLS_OCSP_INVALID', message: /signed by "CN=attacker root", which the issuer did not sign/ })
  // failMode open: a forged answer is no status, as an outage is (the certificate passes on OpenSSL's verdict alone,
  // logged); a revoked certificate asked about at the real responder is still refused.
  const open = await start(t, { ocsp: true, failMode: 'open' })
  t.same(await ask(open.port, cert), { verified: true, refusal: null })
  t.match(open.app.mtls.status().revocation?.ocsp.lastError, { code: 'ERR_MTLS_OCSP_INVALID' })
  const revoked = await clientCert(responder.url)
  intermediate.revoke(revoked)
  await responder.refresh()
  t.same(await ask(open.port, revoked), { verified: false, refusal: 'CERT_REVOKED' })
})

t.test('a responder that stalls holds only its own connection: other clients are served meanwhile', async t => {
  const stalled: Array<() => void> = []
  const slow = createServer(socket => { stalled.push(() => socket.destroy()) })
  await new Promise<void>(resolve => slow.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { for (const end of stalled) end(); slow.close() })
  const held = await clientCert(`http://127.0.0.1:${(slow.address() as { port: number }).port}/`)
  const good = await clientCert(responder.url)
  const { app, port, handled } = await start(t, { ocsp: true, timeoutMs: 60_000 })
  const waiting = ask(port, held)
  await until(() => app.mtls.status().revocation?.ocsp.pending === 1, 'the slow lookup under way')
  t.same(await ask(port, good), { verified: true, refusal: null }, 'another client is served')
  t.equal(handled(), 1, 'and only its request reached the handler')
  t.equal(app.mtls.status().revocation?.ocsp.pending, 1, 'while the slow lookup is still pending')
  // The responder hangs up: the held request goes on, refused (failMode closed).
  for (const end of stalled) end()
  t.same(await waiting, { verified: false, refusal: 'ERR_MTLS_REVOCATION_UNKNOWN' })
  t.equal(handled(), 2)
})

t.test('a responder that sends 10 MB is cut off at the size cap', async t => {
  let sent = 0
  const flood = createHttpServer((request, response) => {
    request.resume()
    response.writeHead(200, { 'content-type': 'application/ocsp-response' })
    const chunk = Buffer.alloc(64 * 1024, 0x30)
    const write = (): void => {
      while (sent < 10 * 1024 * 1024) {
        sent += chunk.length
        if (!response.write(chunk)) { response.once('drain', write); return }
      }
      response.end()
    }
    write()
  })
  await new Promise<void>(resolve => flood.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { flood.closeAllConnections(); flood.close() })
  const cert = await clientCert(`http://127.0.0.1:${(flood.address() as { port: number }).port}/`)
  const { app, port } = await start(t, { ocsp: true })
  t.same(await ask(port, cert), { verified: false, refusal: 'ERR_MTLS_REVOCATION_UNKNOWN' })
  t.match(app.mtls.status().revocation?.ocsp.lastError, { code: 'ERR_MTLS_OCSP_FETCH', message: /is over 65536 bytes/ })
})
