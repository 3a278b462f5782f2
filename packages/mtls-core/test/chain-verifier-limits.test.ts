// ChainVerifier at its edges: how much a peer may present, several CAs that fit one link (each must do, since OpenSSL
// may take any), trust material that is not strict DER, CRLs that tie or are scoped by directory names, and the
// bounded caches. OpenSSL's verdicts on such chains are in test/security/chain-verifier-differential.test.ts.
import t from 'tap'
import {
  KeyPool, algorithms, authority, caExtensions, clientExtensions, explicit, extensions as ext, forgeCertificate, forgeCrl, generateKey, issueCa,
  issueLeaf, name, oid, rsaPss, selfSignedCa, sequence, set, tlv, toPem, type Authority, type Extension
} from 'mtls-test-support/certificate-forge'
import { ChainVerifier } from '../src/index.js'

const pool = new KeyPool({ p256: 4, rsa2048: 1, ed25519: 1, dsa2048: 1 })
const root = selfSignedCa({ key: pool.take('p256'), subject: name(['CN', 'limits root']) })
const intermediate = issueCa(root, { key: pool.take('p256'), subject: name(['CN', 'limits intermediate']) })
const DAY = 86_400_000

const pem = (...ders: Buffer[]): string => ders.map(der => toPem(der)).join('')
const crlPem = (...ders: Buffer[]): string => ders.map(der => toPem(der, 'X509 CRL')).join('')
function codeOf (verifier: ChainVerifier, leaf: Buffer, intermediates: Buffer[] = [intermediate.certificate]): string | null {
  try {
    verifier.verify(leaf, { purpose: 'client', intermediates })
    return null
  } catch (err) {
    return (err as { code: string }).code
  }
}
const leafUnder = (issuer: Authority, extra: Extension[] = []): Buffer => {
  const key = pool.take('p256')
  return issueLeaf(issuer, { key, extensions: [...clientExtensions(key, issuer), ...extra] })
}

t.test('a peer presents 16 certificates with its leaf at most', async t => {
  const verifier = new ChainVerifier({ ca: pem(root.certificate) })
  const leaf = leafUnder(intermediate)
  t.equal(codeOf(verifier, leaf, Array.from({ length: 16 }, () => intermediate.certificate)), null, '16 copies of its intermediate')
  t.equal(codeOf(verifier, leaf, Array.from({ length: 17 }, () => intermediate.certificate)), 'CERT_CHAIN_TOO_LONG', '17')
})

t.test('every CA that fits a link must verify: OpenSSL may take any of them', async t => {
  const verifier = new ChainVerifier({ ca: pem(root.certificate) })
  const leaf = leafUnder(intermediate)
  // Copies of the intermediate with its name and key, each with a serial of its own.
  const copy = (extensions = caExtensions(intermediate.key, root)): Buffer => forgeCertificate({ subject: intermediate.name, key: intermediate.key, issuer: root, extensions })
  t.equal(codeOf(verifier, leaf, [intermediate.certificate, copy(), copy()]), null, 'three copies, each fine')
  t.equal(codeOf(verifier, leaf, [intermediate.certificate, copy([...caExtensions(intermediate.key, root), ext.extendedKeyUsage(['1.3.6.1.5.5.7.3.1'])])]), 'INVALID_PURPOSE', 'one copy for serverAuth only')
  t.equal(codeOf(verifier, leaf, Array.from({ length: 9 }, () => copy())), 'CERT_CHAIN_TOO_LONG', 'nine chains')
  const impostor = forgeCertificate({ subject: intermediate.name, key: pool.take('p256'), issuer: root, extensions: caExtensions(intermediate.key, root) })
  t.equal(codeOf(verifier, leaf, [intermediate.certificate, impostor]), 'CERT_SIGNATURE_FAILURE', 'a copy with another key under the same key identifier')

  // A root renewed with the same name and key: both are trusted, both must do; the pool's links are checked once.
  const renewed = forgeCertificate({ subject: root.name, key: root.key, issuer: root, extensions: caExtensions(root.key, null) })
  const both = new ChainVerifier({ ca: pem(root.certificate, renewed), intermediates: pem(intermediate.certificate) })
  t.equal(codeOf(both, leaf, []), null)
  t.equal(codeOf(both, leaf, []), null, 'again, from the links already checked')
})

t.test('trust material that is not strict DER takes part in no accepted chain', async t => {
  // A root whose subject key identifier has a long-form length it did not need: OpenSSL reads it (BER) and keeps the
  // signed part as it came; the verifier keeps the root but trusts no chain through it.
  const key = pool.take('p256')
  const extensions = caExtensions(key, null).map(extension => extension.oid === '2.5.29.14' ? { ...extension, value: Buffer.concat([Buffer.from([0x04, 0x81, 0x14]), extension.value.subarray(2)]) } : extension)
  const ber = selfSignedCa({ key, subject: name(['CN', 'limits BER root']), extensions })
  t.equal(codeOf(new ChainVerifier({ ca: pem(ber.certificate) }), leafUnder(ber), []), 'ERR_MTLS_CERTIFICATE_MALFORMED')
})

t.test('roots whose self-signature the verifier cannot use', async t => {
  // An RSA-PSS self-signature is read by Node's certificate object; a self-signature naming ECDSA over an Ed25519 key by nothing.
  const pssRoot = selfSignedCa({ key: pool.take('rsa2048'), subject: name(['CN', 'limits PSS root']), algorithm: rsaPss('sha256') })
  t.equal(codeOf(new ChainVerifier({ ca: pem(pssRoot.certificate) }), leafUnder(pssRoot), []), null)
  const edKey = pool.take('ed25519')
  const lying = selfSignedCa({ key: edKey, subject: name(['CN', 'limits lying root']), algorithm: { ...algorithms.ed25519, identifier: algorithms.ecdsaSha256.identifier } })
  t.equal(codeOf(new ChainVerifier({ ca: pem(lying.certificate) }), leafUnder(authority(lying.certificate, edKey)), []), 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'not self-signed, so no root')
})

t.test('an issuer whose key is of another type than the signature', async t => {
  const dsa = issueCa(root, { key: pool.take('dsa2048'), subject: name(['CN', 'limits DSA intermediate']) })
  const key = pool.take('p256')
  const leaf = issueLeaf(dsa, { key, algorithm: { ...algorithms.dsaSha256, identifier: algorithms.ecdsaSha256.identifier } })
  t.equal(codeOf(new ChainVerifier({ ca: pem(root.certificate) }), leaf, [dsa.certificate]), 'CERT_SIGNATURE_FAILURE')
})

t.test('an authority key identifier naming another issuer', async t => {
  const key = pool.take('p256')
  const leaf = issueLeaf(intermediate, {
    key,
    extensions: [...clientExtensions(key, intermediate).filter(e => e.oid !== '2.5.29.35'), ext.authorityKeyIdentifier({ issuer: intermediate.name, serial: intermediate.serial })]
  })
  t.equal(codeOf(new ChainVerifier({ ca: pem(root.certificate) }), leaf), 'AKID_ISSUER_SERIAL_MISMATCH', 'the issuer\'s own name where its issuer\'s belongs')
})

t.test('CRLs: ties, directory names, no next update, bounded signature checks', async t => {
  const rootCrl = forgeCrl({ issuer: root })
  const at = new Date(Date.now() - 3_600_000)
  const leaf = leafUnder(intermediate)
  const tie = new ChainVerifier({ ca: pem(root.certificate), crl: crlPem(rootCrl, forgeCrl({ issuer: intermediate, thisUpdate: at }), forgeCrl({ issuer: intermediate, thisUpdate: at, tamper: { corruptSignature: true } })) })
  t.equal(codeOf(tie, leaf), 'CRL_SIGNATURE_FAILURE', 'two CRLs of one time: OpenSSL may take the broken one')

  const openEnded = new ChainVerifier({ ca: pem(root.certificate), crl: crlPem(forgeCrl({ issuer: root, nextUpdate: null }), forgeCrl({ issuer: intermediate, nextUpdate: null })) })
  t.ok(openEnded.verify(leaf, { purpose: 'client', intermediates: [intermediate.certificate] }) < Date.now() + 31 * DAY, 'the verdict lasts as long as the chain')

  // A distribution point named by a directoryName, matched as OpenSSL matches names (string type and case aside).
  const shard = (value: Buffer): Buffer => sequence(set(sequence(oid('2.5.4.3'), value)))
  const dirPoint = (directoryName: Buffer): Extension => ({ oid: '2.5.29.31', value: sequence(sequence(explicit(0, tlv(0xa0, explicit(4, directoryName))))) })
  const dirScope = (directoryName: Buffer): Extension => ({ oid: '2.5.29.28', critical: true, value: sequence(explicit(0, tlv(0xa0, explicit(4, directoryName)))) })
  const dirLeaf = leafUnder(intermediate, [dirPoint(shard(tlv(0x0c, Buffer.from('Shard A'))))])
  const scopedBy = (extension: Extension): ChainVerifier => new ChainVerifier({ ca: pem(root.certificate), crl: crlPem(rootCrl, forgeCrl({ issuer: intermediate, extraExtensions: [extension] })) })
  t.equal(codeOf(scopedBy(dirScope(shard(tlv(0x13, Buffer.from('shard a'))))), dirLeaf), null, 'the same directory name in another string type and case')
  t.equal(codeOf(scopedBy(dirScope(shard(tlv(0x13, Buffer.from('shard b'))))), dirLeaf), 'UNABLE_TO_GET_CRL', 'another directory name')
  t.equal(codeOf(scopedBy(ext.issuingDistributionPoint({ uris: ['http://crl.test/a.crl'] })), dirLeaf), 'UNABLE_TO_GET_CRL', 'a URI')
  const otherName: Extension = { oid: '2.5.29.31', value: sequence(sequence(explicit(0, tlv(0xa0, tlv(0xa0, oid('1.3.6.1.4.1.55555.5'), explicit(0, tlv(0x0c, Buffer.from('x')))))))) }
  t.equal(codeOf(scopedBy(ext.issuingDistributionPoint({ uris: ['http://crl.test/a.crl'] })), leafUnder(intermediate, [otherName])), 'ERR_MTLS_EXTENSION_UNSUPPORTED', 'an otherName, which the verifier does not compare')

  // A CRL without an authority key identifier is checked against each presented issuer of its name: once per key, 64 keys kept.
  const unnamed = forgeCrl({ issuer: { ...intermediate, keyIdentifier: null } })
  const verifier = new ChainVerifier({ ca: pem(root.certificate), crl: crlPem(rootCrl, unnamed) })
  let refused = 0
  for (let i = 0; i < 66; i++) {
    const issuer = issueCa(root, { key: generateKey('p256'), subject: intermediate.name })
    if (codeOf(verifier, leafUnder(issuer), [issuer.certificate]) === 'CRL_SIGNATURE_FAILURE') refused++
  }
  t.equal(refused, 66, 'a CRL its key did not sign, each time')
})
