// OCSP requests and responses against the real OpenSSL responder (mtls-pki's startOcspResponder runs `openssl ocsp`):
// every response verifyOcspResponse judges here was made by OpenSSL, except the few no OpenSSL responder sends.
import { X509Certificate } from 'node:crypto'
import { OCSPResponse, OCSPResponseStatus } from '@peculiar/asn1-ocsp'
import { AsnConvert } from '@peculiar/asn1-schema'
import fc from 'fast-check'
import t from 'tap'
import { createRootCa, type CertificateAuthority, type IssuedCertificate, type OcspResponder } from 'mtls-pki'
import { OcspError, ocspRequest, ocspUrlOf, revocationPointsOf, verifyOcspResponse, type OcspStatus } from '../src/ocsp.js'

const der = (pem: string): Buffer => new X509Certificate(pem).raw

const root = await createRootCa({ commonName: 'OCSP root' })
const ca = await root.createIntermediate({ commonName: 'OCSP issuing CA' })
const otherCa = await (await createRootCa({ commonName: 'OCSP root' })).createIntermediate({ commonName: 'OCSP issuing CA' })

const plain = await ca.startOcspResponder({ nextUpdateMinutes: 60 })
const delegated = await ca.startOcspResponder({ delegated: true })
t.teardown(plain.close)
t.teardown(delegated.close)

const good = await ca.issue({ dnsNames: ['good.example'], ocspUrl: plain.url, crlDistributionPoints: ['http://crl.example/ca.crl'], mustStaple: true })
const revoked = await ca.issue({ dnsNames: ['revoked.example'] })
ca.revoke(revoked, { reason: 'keyCompromise', date: new Date('2026-01-02T03:04:05Z') })
await plain.refresh()
await delegated.refresh()
const stranger = await otherCa.issue({ dnsNames: ['stranger.example'] })

/** Asks `responder` about `cert` over HTTP POST, as a client would. */
async function fetchResponse (responder: OcspResponder, cert: IssuedCertificate, issuer: CertificateAuthority = ca, nonce = false): Promise<{ body: Buffer, nonce: Buffer | null }> {
  const request = ocspRequest(der(cert.certificate), der(issuer.certificate), { nonce })
  const answer = await fetch(responder.url, { method: 'POST', headers: { 'content-type': 'application/ocsp-request' }, body: request.der })
  return { body: Buffer.from(await answer.arrayBuffer()), nonce: request.nonce }
}

function verify (body: Uint8Array, cert: IssuedCertificate, extra: { now?: number, nonce?: Uint8Array | null, issuer?: CertificateAuthority } = {}): OcspStatus {
  return verifyOcspResponse(body, { certificate: der(cert.certificate), issuer: der((extra.issuer ?? ca).certificate), now: extra.now, nonce: extra.nonce })
}

const goodResponse = (await fetchResponse(plain, good)).body

t.test('good, revoked (with time and reason) and unknown, from the CA-signed responder', async t => {
  const status = verify(goodResponse, good)
  t.equal(status.status, 'good')
  t.equal(status.nextUpdate.getTime() - status.thisUpdate.getTime(), 60 * 60_000)
  t.ok(Math.abs(status.thisUpdate.getTime() - Date.now()) < 5 * 60_000)
  t.equal(status.revokedAt, undefined)

  const revokedStatus = verify((await fetchResponse(plain, revoked)).body, revoked)
  t.equal(revokedStatus.status, 'revoked')
  t.same(revokedStatus.revokedAt, new Date('2026-01-02T03:04:05Z'))
  t.equal(revokedStatus.reason, 'keyCompromise')

  // A serial this CA never issued (another CA's certificate, asked about with our CA as its issuer): unknown.
  const unknown = verifyOcspResponse((await fetchResponse(plain, stranger)).body, { certificate: der(stranger.certificate), issuer: der(ca.certificate) })
  t.equal(unknown.status, 'unknown')
})

t.test('a delegated responder (id-kp-OCSPSigning, issued by the CA) is accepted', async t => {
  const body = (await fetchResponse(delegated, revoked)).body
  const status = verify(body, revoked)
  t.equal(status.status, 'revoked')
  t.equal(status.reason, 'keyCompromise')
  t.equal(verify((await fetchResponse(delegated, good)).body, good).status, 'good')
})

t.test('a responder certificate without id-kp-OCSPSigning is refused, though the CA issued it', async t => {
  const leaf = await ca.issue({ commonName: 'not a responder', usage: 'client' })
  const responder = await ca.startOcspResponder({ signer: { certificate: leaf.certificate, key: leaf.key } })
  t.teardown(responder.close)
  const body = (await fetchResponse(responder, good)).body
  t.throws(() => verify(body, good), { code: 'ERR_MTLS_OCSP_INVALID', check: 'responder-certificate', message: /"CN=not a responder", which the issuer did not delegate OCSP signing to \(no id-kp-OCSPSigning/ })
})

t.test('a response signed by another CA\'s key is refused, whether that CA signs itself or delegates', async t => {
  const selfSigned = await ca.startOcspResponder({ signer: { certificate: otherCa.certificate, key: otherCa.key } })
  t.teardown(selfSigned.close)
  const fromSelfSigned = (await fetchResponse(selfSigned, good)).body
  t.throws(() => verify(fromSelfSigned, good), { name: 'OcspError', check: 'responder-certificate', message: /which the issuer did not sign/ })

  const otherResponder = await otherCa.startOcspResponder({ delegated: true })
  t.teardown(otherResponder.close)
  // The other CA's own responder, asked about our certificate with its CA as issuer: its CertID is not ours.
  const theirs = (await fetchResponse(otherResponder, good, otherCa)).body
  t.throws(() => verify(theirs, good), { name: 'OcspError', check: 'cert-id' })
})

t.test('an expired response and one from the future are refused, within the allowed skew', async t => {
  const status = verify(goodResponse, good)
  const afterNext = status.nextUpdate.getTime() + 5 * 60_000 + 1000
  t.throws(() => verify(goodResponse, good, { now: afterNext }), { name: 'OcspError', check: 'expired', message: /nextUpdate .* has passed/ })
  t.equal(verify(goodResponse, good, { now: status.nextUpdate.getTime() + 60_000 }).status, 'good', 'a minute past nextUpdate is within the skew')
  t.throws(() => verify(goodResponse, good, { now: status.thisUpdate.getTime() - 5 * 60_000 - 1000 }), { name: 'OcspError', check: 'not-yet-valid' })
  t.throws(() => verifyOcspResponse(goodResponse, { certificate: der(good.certificate), issuer: der(ca.certificate), now: status.nextUpdate.getTime() + 1000, skewMs: 0 }), { name: 'OcspError', check: 'expired' })
})

t.test('a response for another certificate (mismatched CertID) is refused', async t => {
  const body = (await fetchResponse(plain, revoked)).body
  t.throws(() => verify(body, good), { name: 'OcspError', check: 'cert-id', message: new RegExp(`no SingleResponse for serial ${good.serialNumber} .*it answers for ${revoked.serialNumber}`) })
  // Same serial asked under another issuer: the issuer hashes differ.
  t.throws(() => verify(goodResponse, good, { issuer: otherCa }), { name: 'OcspError', check: /cert-id|signature|responder-certificate/ })
})

t.test('garbled and unsuccessful responses are refused, naming why', async t => {
  t.throws(() => verify(Buffer.from('not der at all'), good), { name: 'OcspError', check: 'malformed' })
  t.throws(() => verify(goodResponse.subarray(0, goodResponse.length - 10), good), { code: 'ERR_MTLS_OCSP_INVALID' })
  const tryLater = Buffer.from(AsnConvert.serialize(new OCSPResponse({ responseStatus: OCSPResponseStatus.tryLater })))
  t.throws(() => verify(tryLater, good), { name: 'OcspError', check: 'response-status', message: /answered tryLater/ })
  const noBytes = Buffer.from(AsnConvert.serialize(new OCSPResponse({ responseStatus: OCSPResponseStatus.successful })))
  t.throws(() => verify(noBytes, good), { name: 'OcspError', check: 'response-type' })
  t.throws(() => verifyOcspResponse(goodResponse, { certificate: Buffer.from('x'), issuer: der(ca.certificate) }), { code: 'ERR_MTLS_CERTIFICATE_MALFORMED' })
  t.ok(new OcspError('nonce', 'x') instanceof OcspError)
})

t.test('a nonce sent is echoed by OpenSSL and checked', async t => {
  const { body, nonce } = await fetchResponse(plain, good, ca, true)
  t.equal(nonce?.length, 32)
  t.equal(verify(body, good, { nonce }).status, 'good')
  t.throws(() => verify(body, good, { nonce: Buffer.alloc(32, 7) }), { name: 'OcspError', check: 'nonce', message: /another nonce/ })
  t.throws(() => verify(goodResponse, good, { nonce }), { name: 'OcspError', check: 'nonce', message: /not in the response/ })
  const chosen = ocspRequest(der(good.certificate), der(ca.certificate), { nonce: Buffer.alloc(16, 1) })
  t.same(chosen.nonce, Buffer.alloc(16, 1))
  t.equal(ocspRequest(der(good.certificate), der(ca.certificate)).nonce, null)
})

t.test('our request is what OpenSSL sends: the same SHA-1 CertID', async t => {
  const { execFile } = await import('node:child_process')
  const { promisify } = await import('node:util')
  const { mkdtemp, writeFile, readFile, rm } = await import('node:fs/promises')
  const { tmpdir } = await import('node:os')
  const { join } = await import('node:path')
  const dir = await mkdtemp(join(tmpdir(), 'ocsp-req-'))
  t.teardown(async () => { await rm(dir, { recursive: true, force: true }) })
  await writeFile(join(dir, 'cert.pem'), good.certificate)
  await writeFile(join(dir, 'issuer.pem'), ca.certificate)
  await promisify(execFile)('openssl', ['ocsp', '-issuer', join(dir, 'issuer.pem'), '-cert', join(dir, 'cert.pem'), '-no_nonce', '-reqout', join(dir, 'req.der')])
  t.same(ocspRequest(der(good.certificate), der(ca.certificate)).der, await readFile(join(dir, 'req.der')))
})

t.test('revocationPointsOf and ocspUrlOf read AIA, CRL distribution points and must-staple', async t => {
  t.same(revocationPointsOf(der(good.certificate)), { ocspUrls: [plain.url], crlDistributionPoints: ['http://crl.example/ca.crl'], mustStaple: true })
  t.equal(ocspUrlOf(der(good.certificate)), plain.url)
  t.same(revocationPointsOf(der(revoked.certificate)), { ocspUrls: [], crlDistributionPoints: [], mustStaple: false })
  t.equal(ocspUrlOf(der(revoked.certificate)), null)
  t.equal(ocspUrlOf(der(stranger.certificate)), null)
})

t.test('property: a good response with any byte changed never verifies as anything but the same good answer', async t => {
  const original = verify(goodResponse, good)
  let accepted = 0
  const checks = new Set<string>()
  const check = (mutated: Buffer): void => {
    let status: OcspStatus
    try {
      status = verify(mutated, good)
    } catch (err) {
      if (!(err instanceof OcspError)) throw err
      checks.add(err.check)
      return
    }
    accepted++
    // A change the signature does not cover (the certificates a CA-signed response carries) changes nothing reported.
    if (JSON.stringify(status) !== JSON.stringify(original)) differing.push(mutated.toString('hex'))
  }
  const differing: string[] = []
  // Every position, one bit each (which bit varies with the position), then random changes.
  for (let at = 0; at < goodResponse.length; at++) {
    const mutated = Buffer.from(goodResponse)
    mutated[at] = (mutated[at] as number) ^ (1 << (at % 8))
    check(mutated)
  }
  fc.assert(fc.property(fc.nat({ max: goodResponse.length - 1 }), fc.integer({ min: 1, max: 255 }), (at, xor) => {
    const mutated = Buffer.from(goodResponse)
    mutated[at] = (mutated[at] as number) ^ xor
    check(mutated)
  }), { numRuns: 1000 })
  t.same(differing, [], 'no changed response verified with another answer')
  // The signature is what stops most of them; a changed status, date or CertID never gets past it.
  t.ok(checks.has('signature') && checks.has('malformed'), [...checks].join(', '))
  t.comment(`${accepted} mutations verified (changes outside the signed data, such as the certificates)`)
})
