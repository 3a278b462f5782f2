// Attacks on revocation by CRL distribution points: what a distribution point (or whoever answers for it) serves must
// never unrevoke a certificate or stand in for the issuer's CRL.
import t from 'tap'
import { createRootCa, type CertificateAuthority, type IssuedCertificate } from 'mtls-pki'
import { until } from 'mtls-test-support'
import { readPemBlocks } from 'mtls-core/internal'
import { attempt, keptAlive, pointServing, startVerdictServer, type Teardown } from '../helpers.js'

const root = await createRootCa({ commonName: 'crl dp attack root' })
const intermediate = await root.createIntermediate({ commonName: 'crl dp attack CA' })
const serverCert = await intermediate.issue({ dnsNames: ['localhost'], ips: ['127.0.0.1'], usage: 'server' })
const crlOf = async (ca: CertificateAuthority): Promise<Buffer> => Buffer.from((readPemBlocks(await ca.createCrl())[0] as { der: Uint8Array }).der)

async function start (t: Teardown, crlRefreshMs?: number): Promise<Awaited<ReturnType<typeof startVerdictServer>>> {
  return await startVerdictServer(t, { cert: serverCert.chain, key: serverCert.key, ca: root.certificate, mode: 'optional' },
    { revocation: { crlDistributionPoints: true, ...(crlRefreshMs === undefined ? {} : { crlRefreshMs }) } })
}
const verdict = async (port: number, cert: IssuedCertificate): Promise<unknown> =>
  JSON.parse((await attempt(port, { ca: root.certificate, chain: cert.chain, key: cert.key }, {}, '/verdict')).body)

t.test('a valid CRL of another CA (which lists nothing) does not stand in for the issuer\'s', async t => {
  const sibling = await root.createIntermediate({ commonName: 'sibling CA' })
  const point = await pointServing(t, async response => { response.end(await crlOf(sibling)) })
  const revoked = await intermediate.issue({ usage: 'client', crlDistributionPoints: [point.url] })
  intermediate.revoke(revoked)
  const { port } = await start(t)
  t.same(await verdict(port, revoked), { verified: false, refusal: 'ERR_MTLS_REVOCATION_UNKNOWN' })
})

t.test('a distribution point that redirects elsewhere is not followed', async t => {
  const good = await pointServing(t, async response => { response.end(await crlOf(intermediate)) })
  const redirecting = await pointServing(t, response => { response.writeHead(302, { location: good.url }).end() })
  const cert = await intermediate.issue({ usage: 'client', crlDistributionPoints: [redirecting.url] })
  const { app, port } = await start(t)
  t.same(await verdict(port, cert), { verified: false, refusal: 'ERR_MTLS_REVOCATION_UNKNOWN' })
  t.equal(good.requests(), 0)
  t.match(app.mtls.status().revocation?.crl?.lastError, { code: 'ERR_MTLS_CRL_FETCH', message: /HTTP 302/ })
})

t.test('a later download that is not the issuer\'s CRL (an impostor\'s, garbage) changes nothing: the CRL in force stays, and a revocation still lands after', async t => {
  const impostor = await createRootCa({ commonName: 'crl dp attack CA' })
  const point = await pointServing(t, async response => { response.end(await crlOf(intermediate)) })
  const cert = await intermediate.issue({ usage: 'client', crlDistributionPoints: [point.url] })
  const { app, port } = await start(t, 1000)
  const kept = await keptAlive(t, port, root.certificate, cert)
  t.match(await kept.ask('/verdict'), /"verified":true/)
  const inForce = app.mtls.status().revocation?.crl?.distributionPoints[0]?.fetchedAt
  // The impostor lists the certificate; it must not revoke it either: it is not the issuer's word.
  intermediate.revoke(cert)
  point.serve(async response => { response.end(await crlOf(impostor)) })
  const before = point.requests()
  await until(() => point.requests() > before && app.mtls.status().revocation?.crl?.lastError !== null, 'the impostor\'s CRL downloaded and refused')
  t.match(app.mtls.status().revocation?.crl?.lastError, { code: 'ERR_MTLS_CRL_INVALID' })
  t.equal(app.mtls.status().revocation?.crl?.distributionPoints[0]?.fetchedAt.getTime(), inForce?.getTime(), 'the CRL in force stays')
  t.match(await kept.ask('/verdict'), /"verified":true/, 'the open connection keeps its verdict')
  point.serve(response => { response.end('garbage') })
  const later = point.requests()
  await until(() => point.requests() > later, 'garbage downloaded')
  t.match(await kept.ask('/verdict'), /"verified":true/)
  // The issuer's own CRL, once served again, revokes it.
  point.serve(async response => { response.end(await crlOf(intermediate)) })
  await until(() => app.mtls.stats().failures.revoked === 1, 'the issuer\'s CRL downloaded again')
  t.match(await kept.ask('/verdict'), /"verified":false,"refusal":"CERT_REVOKED"/)
})
