import { X509Certificate } from 'node:crypto'
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { CertificateAuthority, PkiError, createRootCa, createTestPki, writeCertificateAuthority } from '../../src/index.js'

// The attack on the tests that use this CA: `issue({ spifeId })` from JavaScript used to make a certificate
// without the SPIFFE ID, `createTestPki({ trustDomian })` a set for the default trust domain, and a test of
// a SPIFFE check then passed for the wrong reason. Every options object now refuses a key it does not know.

type Loose = Record<string, unknown>
const root = await createRootCa()
const intermediate = await root.createIntermediate()
const leaf = await intermediate.issue({ usage: 'client', spiffeId: 'spiffe://example.org/a' })

t.test('a misspelt issue() option is refused instead of leaving the SPIFFE ID out', async t => {
  const error = await intermediate.issue({ usage: 'client', spifeId: 'spiffe://example.org/orders' } as Loose).then(() => null, (err: unknown) => err)
  t.ok(error instanceof PkiError)
  t.match(error, {
    code: 'ERR_MTLS_PKI_INVALID_OPTION',
    message: /^issue: unknown option "spifeId" \(did you mean "spiffeId"\?\); known options: notBefore, notAfter, days, commonName, spiffeId, /
  })
  const spelt = await intermediate.issue({ usage: 'client', spiffeId: 'spiffe://example.org/orders' })
  t.equal(new X509Certificate(spelt.certificate).subjectAltName, 'URI:spiffe://example.org/orders', 'the correctly spelt option puts the SPIFFE ID in')
})

t.test('createTestPki refuses a misspelt trust domain', async t => {
  await t.rejects(createTestPki({ trustDomian: 'example.org' } as Loose), {
    code: 'ERR_MTLS_PKI_INVALID_OPTION',
    message: 'createTestPki: unknown option "trustDomian" (did you mean "trustDomain"?); known options: trustDomain, keyType'
  })
})

t.test('every function that takes options refuses an unknown key, naming the function and the closest key', async t => {
  const dir = await mkdtemp(join(tmpdir(), 'mtls-pki-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const cases: Array<[string, () => Promise<unknown>, RegExp]> = [
    ['createRootCa', async () => await createRootCa({ commonname: 'x' } as Loose), /^createRootCa: unknown option "commonname" \(did you mean "commonName"\?\)/],
    ['CertificateAuthority.createRoot', async () => await CertificateAuthority.createRoot({ keytype: 'p384' } as Loose), /^createRoot: unknown option "keytype" \(did you mean "keyType"\?\)/],
    ['createIntermediate', async () => await root.createIntermediate({ pathLenght: 1 } as Loose), /^createIntermediate: unknown option "pathLenght" \(did you mean "pathLength"\?\)/],
    ['issue', async () => await intermediate.issue({ isCA: true } as Loose), /^issue: unknown option "isCA" \(did you mean "isCa"\?\)/],
    ['revoke', async () => intermediate.revoke(leaf, { reasons: 'keyCompromise' } as Loose), /^revoke: unknown option "reasons" \(did you mean "reason"\?\)/],
    ['createCrl', async () => await intermediate.createCrl({ day: 1 } as Loose), /^createCrl: unknown option "day" \(did you mean "days"\?\)/],
    ['createCrls', async () => await intermediate.createCrls({ nextupdate: new Date() } as Loose), /^createCrls: unknown option "nextupdate" \(did you mean "nextUpdate"\?\)/],
    ['writeCertificateAuthority', async () => await writeCertificateAuthority(dir, intermediate, { forced: true } as Loose), /^writeCertificateAuthority: unknown option "forced" \(did you mean "force"\?\)/]
  ]
  for (const [what, call, message] of cases) await t.rejects(call(), { code: 'ERR_MTLS_PKI_INVALID_OPTION', message }, what)
  t.same(intermediate.revoked, [], 'the refused revoke() recorded nothing')
  t.same(await readdir(dir), [], 'the refused writeCertificateAuthority() wrote nothing')
})

t.test('options that are not an object are refused', async t => {
  await t.rejects(createRootCa(null as unknown as Loose), { code: 'ERR_MTLS_PKI_INVALID_OPTION', message: 'createRootCa: options must be an object; got null' })
  await t.rejects(intermediate.issue('spiffe://example.org/a' as unknown as Loose), { code: 'ERR_MTLS_PKI_INVALID_OPTION', message: 'issue: options must be an object; got string' })
})

t.test('every documented option is still accepted', async t => {
  const dir = await mkdtemp(join(tmpdir(), 'mtls-pki-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const ca = await createRootCa({ commonName: 'r', keyType: 'p256', notBefore: new Date(Date.now() - 1000), days: 10 })
  const sub = await ca.createIntermediate({ commonName: 'i', keyType: 'p256', notBefore: new Date(Date.now() - 1000), notAfter: new Date(Date.now() + 86400e3), pathLength: 0 })
  const cert = await sub.issue({
    commonName: 'c',
    spiffeId: 'spiffe://example.org/c',
    uris: ['https://example.org'],
    dnsNames: ['c'],
    ips: ['::1'],
    emails: ['c@example.org'],
    usage: 'both',
    keyUsages: ['digitalSignature'],
    extendedKeyUsages: ['clientAuth'],
    isCa: false,
    keyType: 'p256',
    notBefore: new Date(Date.now() - 1000),
    days: 1,
    crlDistributionPoints: ['http://crl.example/1.crl']
  })
  t.equal(sub.revoke(cert, { reason: 'keyCompromise', date: new Date() }).serialNumber, cert.serialNumber)
  t.match(await sub.createCrl({ thisUpdate: new Date(), nextUpdate: new Date(Date.now() + 86400e3), issuingDistributionPoint: 'http://crl.example/1.crl' }), /BEGIN X509 CRL/)
  t.equal((await sub.createCrls({ days: 1, issuingDistributionPoint: 'http://crl.example/1.crl' })).length, 2)
  await writeCertificateAuthority(dir, sub, { force: true })
  t.equal((await createTestPki({ trustDomain: 'example.org', keyType: 'p256' })).orderService.keyType, 'p256')
})
