import { createPrivateKey } from 'node:crypto'
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as tls from 'node:tls'
import t from 'tap'
import { createRootCa, createTestPki, writeCertificateFiles } from 'mtls-pki'
import { MaterialError, loadMaterial, materialTlsOptions } from '../src/index.js'
import { secondsToExpiry } from '../src/internal.js'

const pki = await createTestPki()
const dir = await mkdtemp(join(tmpdir(), 'mtls-core-material-'))
t.teardown(() => rm(dir, { recursive: true, force: true }))
const server = await writeCertificateFiles(dir, 'server', pki.server)
const client = await writeCertificateFiles(dir, 'client', pki.orderService)
const serverFiles = { certFile: server.chainFile, keyFile: server.keyFile, caFile: server.caFile }
const write = async (name: string, text: string): Promise<string> => {
  const file = join(dir, name)
  await writeFile(file, text)
  return file
}

t.test('valid material loads from files, with what a status page needs', async t => {
  const material = await loadMaterial(serverFiles, { side: 'server' })
  t.equal(material.leaf.subject, 'CN=localhost')
  t.same(material.leaf.uris, ['spiffe://mycompany.com/production/payment-service'])
  t.same(material.leaf.dnsNames, ['localhost'])
  t.same(material.leaf.ips, ['127.0.0.1', '::1'])
  t.equal(material.leaf.fingerprint256, pki.server.fingerprint256)
  t.equal(material.leaf.serialNumber, pki.server.serialNumber)
  t.equal(material.intermediates.length, 1)
  t.equal(material.intermediates[0]?.subject, 'CN=mtls-pki test intermediate CA')
  t.equal(material.authorities.length, 1)
  t.equal(material.authorities[0]?.isCa, true)
  t.same(material.files, [server.chainFile, server.keyFile, server.caFile])
  const seconds = secondsToExpiry(material.leaf)
  t.ok(seconds > 89 * 86400 && seconds <= 90 * 86400, `seconds to expiry: ${seconds}`)
  t.ok(Object.isFrozen(material) && Object.isFrozen(material.leaf))
  t.match(material.key, /^-----BEGIN PRIVATE KEY-----/)
  t.equal(material.cert, pki.server.chain)
  const context = materialTlsOptions(material)
  t.same(Object.keys(context), ['cert', 'key', 'ca'], 'no crl key without CRLs')
  t.doesNotThrow(() => tls.createSecureContext(context), 'Node accepts it as a secure context')

  const fromPem = await loadMaterial({ cert: pki.server.chain, key: Buffer.from(pki.server.key), ca: [pki.ca] }, { side: 'server' })
  t.equal(fromPem.digest === material.digest, false, 'the digest covers where it came from')
  t.equal(fromPem.leaf.fingerprint256, material.leaf.fingerprint256)
  t.same(fromPem.files, [])
  const again = await loadMaterial(serverFiles, { side: 'server' })
  t.equal(again.digest, material.digest, 'the same inputs give the same digest')
})

t.test('keys load as PKCS#8, SEC1, PKCS#1 and encrypted with a passphrase', async t => {
  const ec = createPrivateKey(pki.server.key)
  const variants: Array<[string, string, string | undefined]> = [
    ['sec1', ec.export({ type: 'sec1', format: 'pem' }) as string, undefined],
    ['encrypted pkcs8', ec.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'secret' }) as string, 'secret'],
    ['encrypted sec1', ec.export({ type: 'sec1', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'secret' }) as string, 'secret']
  ]
  for (const [what, key, passphrase] of variants) {
    const material = await loadMaterial({ cert: pki.server.chain, key, ca: pki.ca, ...(passphrase === undefined ? {} : { passphrase }) }, { side: 'server' })
    t.equal(material.leaf.fingerprint256, pki.server.fingerprint256, what)
  }
  const rsa = await createTestPki({ keyType: 'rsa2048' })
  const pkcs1 = createPrivateKey(rsa.server.key).export({ type: 'pkcs1', format: 'pem' }) as string
  const fromPkcs1 = await loadMaterial({ cert: rsa.server.chain, key: pkcs1, ca: rsa.ca }, { side: 'server' })
  t.equal(fromPkcs1.leaf.fingerprint256, rsa.server.fingerprint256, 'pkcs1: the certificate')
  const pkcs8 = (key: string | Buffer): Buffer => createPrivateKey(key).export({ type: 'pkcs8', format: 'der' })
  t.same(pkcs8(fromPkcs1.key), pkcs8(rsa.server.key), 'pkcs1: the same private key')
  const encrypted = variants[1]![1]
  await t.rejects(loadMaterial({ cert: pki.server.chain, key: encrypted, ca: pki.ca }, { side: 'server' }), { code: 'ERR_MTLS_MATERIAL_KEY_UNREADABLE', message: /key option: cannot read the private key: the key is encrypted and no passphrase was given/ })
  await t.rejects(loadMaterial({ cert: pki.server.chain, key: encrypted, ca: pki.ca, passphrase: 'wrong' }, { side: 'server' }), { code: 'ERR_MTLS_MATERIAL_KEY_UNREADABLE', message: /wrong passphrase/ })
})

t.test('each problem is refused with its own code, naming the file and the reason', async t => {
  const other = await createRootCa()
  const unreadable = await write('unreadable.pem', pki.server.key)
  await chmod(unreadable, 0o000)
  const cases: Array<[string, Record<string, unknown>, 'server' | 'client', string, RegExp, string | undefined]> = [
    ['a missing file', { ...serverFiles, certFile: join(dir, 'nope.pem') }, 'server', 'ERR_MTLS_MATERIAL_FILE_UNREADABLE', /nope\.pem: cannot read \(no such file\)/, join(dir, 'nope.pem')],
    ['a directory', { ...serverFiles, keyFile: dir }, 'server', 'ERR_MTLS_MATERIAL_FILE_UNREADABLE', /is a directory/, dir],
    ['a certificate file without PEM', { ...serverFiles, certFile: await write('text.pem', 'hello') }, 'server', 'ERR_MTLS_MATERIAL_NO_PEM', /text\.pem: no certificate/, join(dir, 'text.pem')],
    ['a key file without a key', { ...serverFiles, keyFile: server.certFile }, 'server', 'ERR_MTLS_MATERIAL_NO_PEM', /server\.pem: no private key/, server.certFile],
    ['a corrupt certificate', { ...serverFiles, certFile: await write('corrupt.pem', '-----BEGIN CERTIFICATE-----\nMIIBAAAA\n-----END CERTIFICATE-----\n') }, 'server', 'ERR_MTLS_MATERIAL_CERT_MALFORMED', /corrupt\.pem: certificate 1 is malformed/, join(dir, 'corrupt.pem')],
    ['a corrupt key', { ...serverFiles, keyFile: await write('corrupt-key.pem', '-----BEGIN PRIVATE KEY-----\nMIIBAAAA\n-----END PRIVATE KEY-----\n') }, 'server', 'ERR_MTLS_MATERIAL_KEY_UNREADABLE', /corrupt-key\.pem: cannot read the private key/, join(dir, 'corrupt-key.pem')],
    ['a key of another certificate', { ...serverFiles, keyFile: client.keyFile }, 'server', 'ERR_MTLS_MATERIAL_KEY_MISMATCH', /client-key\.pem: the private key does not belong to the certificate in .*server-chain\.pem/, client.keyFile],
    ['an expired certificate', { cert: pki.expired.chain, key: pki.expired.key, ca: pki.ca }, 'client', 'ERR_MTLS_MATERIAL_EXPIRED', /cert option: the certificate expired at/, undefined],
    ['a certificate not yet valid', { cert: pki.notYetValid.chain, key: pki.notYetValid.key, ca: pki.ca }, 'client', 'ERR_MTLS_MATERIAL_NOT_YET_VALID', /cert option: the certificate is not valid until/, undefined],
    ['a chain from another CA', { ...serverFiles, caFile: await write('other-ca.pem', other.certificate) }, 'server', 'ERR_MTLS_MATERIAL_UNTRUSTED_CHAIN', /server-chain\.pem: the chain does not lead to any trusted CA in .*other-ca\.pem/, server.chainFile],
    ['a leaf without its intermediate', { ...serverFiles, certFile: server.certFile }, 'server', 'ERR_MTLS_MATERIAL_UNTRUSTED_CHAIN', /no CA issued "CN=mtls-pki test intermediate CA"/, server.certFile],
    ['a client certificate used by a server', { certFile: client.chainFile, keyFile: client.keyFile, caFile: client.caFile }, 'server', 'ERR_MTLS_MATERIAL_EKU_UNSUITABLE', /lacks serverAuth, so it cannot serve as a TLS server/, client.chainFile],
    ['a server certificate used by a client', serverFiles, 'client', 'ERR_MTLS_MATERIAL_EKU_UNSUITABLE', /lacks clientAuth/, server.chainFile],
    ['an empty CA bundle', { ...serverFiles, caFile: await write('empty-ca.pem', '# nothing here\n') }, 'server', 'ERR_MTLS_MATERIAL_CA_EMPTY', /empty-ca\.pem: no CA certificate/, join(dir, 'empty-ca.pem')],
    ['a CRL file without a CRL', { ...serverFiles, crlFile: server.certFile }, 'server', 'ERR_MTLS_MATERIAL_NO_PEM', /no CRL/, server.certFile],
    ['a corrupt CRL', { ...serverFiles, crl: '-----BEGIN X509 CRL-----\nMIIBAAAA\n-----END X509 CRL-----\n' }, 'server', 'ERR_MTLS_MATERIAL_CRL_MALFORMED', /crl option: CRL 1 is malformed/, undefined],
    ['a CRL past its next update', { ...serverFiles, crl: await pki.intermediate.createCrl({ thisUpdate: new Date(Date.now() - 10 * 86400e3), days: 2 }) }, 'server', 'ERR_MTLS_MATERIAL_CRL_EXPIRED', /was due for renewal/, undefined],
    ['no certificate at all', { keyFile: server.keyFile, caFile: server.caFile }, 'server', 'ERR_MTLS_MATERIAL_OPTION_INVALID', /give exactly one of certFile or cert/, undefined],
    ['a certificate twice', { ...serverFiles, cert: pki.server.chain }, 'server', 'ERR_MTLS_MATERIAL_OPTION_INVALID', /give certFile or cert, not both/, undefined],
    ['no CA', { certFile: server.chainFile, keyFile: server.keyFile }, 'server', 'ERR_MTLS_MATERIAL_OPTION_INVALID', /give caFile or ca/, undefined],
    ['a CA that is not text', { ...serverFiles, caFile: undefined, ca: 42 }, 'server', 'ERR_MTLS_MATERIAL_OPTION_INVALID', /ca must be PEM text/, undefined],
    ['an empty file name', { ...serverFiles, caFile: '' }, 'server', 'ERR_MTLS_MATERIAL_OPTION_INVALID', /caFile must be a file path/, undefined],
    ['an unknown side', serverFiles, 'peer' as 'server', 'ERR_MTLS_MATERIAL_OPTION_INVALID', /side must be 'server' or 'client'/, undefined]
  ]
  if (process.getuid?.() !== 0) cases.push(['a file without read permission', { ...serverFiles, keyFile: unreadable }, 'server', 'ERR_MTLS_MATERIAL_FILE_UNREADABLE', /permission denied/, unreadable])
  for (const [what, input, side, code, message, file] of cases) {
    const err = await loadMaterial(input, { side }).then(() => null, (e: unknown) => e)
    t.ok(err instanceof MaterialError, `${what}: a MaterialError`)
    t.match(err, { code, message }, what)
    t.equal((err as MaterialError).file, file, `${what}: names the file`)
  }
})

t.test('CRLs load beside the CAs, and the context refuses a revoked client', async t => {
  const crlFile = await write('crl.pem', pki.crl.join(''))
  const material = await loadMaterial({ ...serverFiles, crlFile }, { side: 'server' })
  t.equal(material.crls.length, 2)
  t.equal(material.crls[0]?.revokedCount, 1)
  t.equal(material.crls[0]?.issuer, 'CN=mtls-pki test intermediate CA')
  // A CRL of known dates, whole seconds as the DER holds them.
  const thisUpdate = new Date(Math.floor(Date.now() / 1000) * 1000 - 3_600_000)
  const dated = await loadMaterial({ ...serverFiles, crl: await pki.intermediate.createCrl({ thisUpdate, days: 3 }) }, { side: 'server' })
  t.same([dated.crls[0]?.thisUpdate.getTime(), dated.crls[0]?.nextUpdate?.getTime()], [thisUpdate.getTime(), thisUpdate.getTime() + 3 * 86_400_000], 'thisUpdate and nextUpdate as the CRL gives them')
  t.same(Object.keys(materialTlsOptions(material)), ['cert', 'key', 'ca', 'crl'])
})

t.test('own-chain verification can be turned off for a publicly issued server certificate', async t => {
  const other = await createRootCa()
  const material = await loadMaterial({ ...serverFiles, caFile: undefined, ca: other.certificate }, { side: 'server', verifyOwnChain: false })
  t.equal(material.authorities[0]?.fingerprint256, other.fingerprint256)
})
