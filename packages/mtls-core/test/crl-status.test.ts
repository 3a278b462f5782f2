// crlStatus and fetchCrl: a CRL from a distribution point judged for one certificate, with CRLs mtls-pki signs.
import { once } from 'node:events'
import { X509Certificate } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import t, { type Test } from 'tap'
import { createRootCa } from 'mtls-pki'
import { crlStatus, readCrl } from '../src/crl-status.js'
import { fetchCrl } from '../src/ocsp-fetch.js'
import { readPemBlocks } from '../src/pem.js'

const der = (pem: string): Buffer => new X509Certificate(pem).raw
const crlDer = (pem: string): Buffer => Buffer.from((readPemBlocks(pem)[0] as { der: Uint8Array }).der)

const root = await createRootCa({ commonName: 'crl status root' })
const ca = await root.createIntermediate({ commonName: 'crl status CA' })
const good = await ca.issue({ commonName: 'good', usage: 'client', crlDistributionPoints: ['http://crl.example/a.crl'] })
const revoked = await ca.issue({ commonName: 'revoked', usage: 'client', crlDistributionPoints: ['http://crl.example/a.crl'] })
ca.revoke(revoked, { reason: 'keyCompromise' })
const options = (cert: { certificate: string }, now?: number): { certificate: Buffer, issuer: Buffer, now?: number } =>
  ({ certificate: der(cert.certificate), issuer: der(ca.certificate), ...(now === undefined ? {} : { now }) })

function refused (t: Test, thrower: () => unknown, check: string, message: RegExp): void {
  t.throws(thrower, { name: 'CrlStatusError', code: 'ERR_MTLS_CRL_INVALID', check, message }, check)
}

t.test('good and revoked, from DER or one PEM block; the dates are the CRL\'s', async t => {
  const pem = await ca.createCrl({ days: 2 })
  for (const body of [crlDer(pem), Buffer.from(pem)]) {
    const crl = readCrl(body)
    t.match(crlStatus(crl, options(good)), { status: 'good', thisUpdate: Date, nextUpdate: Date })
    t.equal(crlStatus(crl, options(revoked)).status, 'revoked')
  }
})

t.test('malformed: garbage, two PEM blocks, a certificate where a CRL should be', async t => {
  const pem = await ca.createCrl()
  refused(t, () => readCrl(Buffer.from('not a CRL')), 'malformed', /neither DER nor one PEM/)
  refused(t, () => readCrl(Buffer.from(pem + pem)), 'malformed', /2 blocks/)
  refused(t, () => readCrl(der(ca.certificate)), 'malformed', /CRL refused/)
  refused(t, () => crlStatus(readCrl(crlDer(pem)), { certificate: Buffer.from('x'), issuer: der(ca.certificate) }), 'malformed', /certificate is not a certificate/)
})

t.test('another CA\'s CRL, or one under the same name with another key, is not the issuer\'s', async t => {
  const other = await root.createIntermediate({ commonName: 'another CA' })
  const otherCrl = readCrl(crlDer(await other.createCrl()))
  refused(t, () => crlStatus(otherCrl, options(good)), 'issuer', /not the certificate's issuer/)
  const impostor = await createRootCa({ commonName: 'crl status CA' })
  const impostorCrl = readCrl(crlDer(await impostor.createCrl()))
  refused(t, () => crlStatus(impostorCrl, options(good)), 'issuer', /authority key identifier/)
  // The issuer given must be the certificate's issuer, whatever the CRL says.
  const rootCrl = readCrl(crlDer(await root.createCrl()))
  refused(t, () => crlStatus(rootCrl, { certificate: der(good.certificate), issuer: der(root.certificate) }), 'issuer', /not the certificate's issuer/)
})

t.test('a signature that is not the issuer\'s: one byte of it changed', async t => {
  const body = crlDer(await ca.createCrl())
  body[body.length - 5] = (body[body.length - 5] as number) ^ 0x01
  refused(t, () => crlStatus(readCrl(body), options(good)), 'signature', /signature/)
})

t.test('times: past nextUpdate, or thisUpdate ahead, beyond five minutes of skew; within it, current', async t => {
  const now = Date.now()
  const stale = readCrl(crlDer(await ca.createCrl({ thisUpdate: new Date(now - 7_200_000), nextUpdate: new Date(now - 3_600_000) })))
  refused(t, () => crlStatus(stale, options(good)), 'expired', /nextUpdate was/)
  t.equal(crlStatus(stale, options(good, now - 3_600_000 + 60_000)).status, 'good', 'a minute after nextUpdate: within the skew')
  const early = readCrl(crlDer(await ca.createCrl({ thisUpdate: new Date(now + 3_600_000), days: 1 })))
  refused(t, () => crlStatus(early, options(good)), 'not-yet-valid', /thisUpdate is/)
})

t.test('a shard scoped to another distribution point does not cover the certificate', async t => {
  const shard = readCrl(crlDer(await ca.createCrl({ issuingDistributionPoint: 'http://crl.example/b.crl' })))
  refused(t, () => crlStatus(shard, options(good)), 'scope', /does not cover/)
  const own = readCrl(crlDer(await ca.createCrl({ issuingDistributionPoint: 'http://crl.example/a.crl' })))
  t.equal(crlStatus(own, options(revoked)).status, 'revoked', 'the certificate\'s own shard lists it')
})

async function serve (t: Test, handler: (request: IncomingMessage, response: ServerResponse) => void): Promise<string> {
  const server = createServer(handler)
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => { server.closeAllConnections(); server.close() })
  return `http://127.0.0.1:${(server.address() as { port: number }).port}/ca.crl`
}

t.test('fetchCrl: one GET; HTTP errors, redirects, other schemes, sizes over the cap and silence are ERR_MTLS_CRL_FETCH', async t => {
  const body = crlDer(await ca.createCrl())
  let method = ''
  const url = await serve(t, (request, response) => { method = request.method ?? ''; response.end(body) })
  t.same(await fetchCrl(url), body)
  t.equal(method, 'GET')
  const fails = async (promise: Promise<unknown>, message: RegExp, what: string): Promise<void> => { await t.rejects(promise, { code: 'ERR_MTLS_CRL_FETCH', message }, what) }
  await fails(fetchCrl(await serve(t, (_, response) => { response.writeHead(404).end() })), /HTTP 404/, 'an HTTP error')
  await fails(fetchCrl(await serve(t, (_, response) => { response.writeHead(302, { location: url }).end() })), /HTTP 302/, 'a redirect is not followed')
  await fails(fetchCrl('ldap://directory.example/cn=crl'), /ldap: URLs are not fetched/, 'ldap:')
  await fails(fetchCrl('https://127.0.0.1:1/ca.crl'), /https: URLs are not fetched .*unless allowHttps/, 'https: without allowHttps')
  await fails(fetchCrl(url, { maxBytes: 10 }), /over 10 bytes/, 'a declared length over the cap')
  const chunked = await serve(t, (_, response) => { response.write(body.subarray(0, 20)); response.end(body.subarray(20)) })
  await fails(fetchCrl(chunked, { maxBytes: 30 }), /over 30 bytes/, 'a chunked body over the cap')
  await fails(fetchCrl(await serve(t, () => {}), { timeoutMs: 200 }), /no answer within 200 ms/, 'silence')
  await fails(fetchCrl('not a url'), /is not a URL/, 'not a URL')
})
