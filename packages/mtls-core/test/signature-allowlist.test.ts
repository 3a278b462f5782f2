// The allowlist of signature algorithms and keys, identifier by identifier and key by key; what the verifier makes of
// them is in test/security/chain-verifier-differential.test.ts, against OpenSSL.
import { generateKeyPairSync } from 'node:crypto'
import t from 'tap'
import { KeyPool, algorithms, bitString, explicit, integer, issueLeaf, name, nullValue, oid, relabelledSpki, rsaPss, selfSignedCa, sequence, tlv } from 'mtls-test-support/certificate-forge'
import { readCertificateFields, readSignedParts } from '../src/der.js'
import { keyProblem, signatureAlgorithm, verifiesWith, type AllowedAlgorithm } from '../src/signature-allowlist.js'

const pool = new KeyPool({ p256: 1, rsa2048: 1 })
const root = selfSignedCa({ key: pool.take('p256'), subject: name(['CN', 'allowlist root']) })
const named = (identifier: Buffer): string => {
  const verdict = signatureAlgorithm(identifier)
  return 'refused' in verdict ? `${verdict.refused}: ${verdict.name}` : verdict.name
}
const sha = (dotted: string, parameters?: Buffer): Buffer => sequence(oid(dotted), ...(parameters === undefined ? [] : [parameters]))
const SHA256 = '2.16.840.1.101.3.4.2.1'
const pss = (...fields: Buffer[]): Buffer => sequence(oid('1.2.840.113549.1.1.10'), sequence(...fields))
const mgf1 = (hash: Buffer): Buffer => sequence(oid('1.2.840.113549.1.1.8'), hash)

t.test('signature algorithm identifiers, as whole encodings', async t => {
  t.equal(named(algorithms.ecdsaSha256.identifier), 'ECDSA with SHA-256')
  t.equal(named(algorithms.ecdsaSha512.identifier), 'ECDSA with SHA-512')
  t.equal(named(algorithms.rsaSha384.identifier), 'RSA PKCS#1 v1.5 with SHA-384')
  t.equal(named(algorithms.ed448.identifier), 'Ed448')
  t.equal(named(rsaPss('sha384').identifier), 'RSA-PSS with SHA-384')
  t.equal(named(pss(explicit(0, sha(SHA256)), explicit(1, mgf1(sha(SHA256))), explicit(2, integer(32)))), 'RSA-PSS with SHA-256', 'hash identifiers without their NULL')
  t.equal(named(algorithms.rsaMd5Oiw.identifier), 'weak: md5WithRSA (OIW)')
  t.equal(named(algorithms.ecdsaSha1.identifier), 'weak: ecdsa-with-SHA1')
  t.equal(named(algorithms.dsaSha1.identifier), 'weak: dsa-with-sha1')
  t.equal(named(rsaPss('sha1').identifier), 'weak: RSA-PSS without SHA-256, SHA-384 or SHA-512')
  t.equal(named(rsaPss('sha1', { noParameters: true }).identifier), 'weak: RSA-PSS with its default parameters (SHA-1)')
  t.equal(named(pss(explicit(1, mgf1(sha(SHA256))))), 'weak: RSA-PSS without SHA-256, SHA-384 or SHA-512', 'no hash: SHA-1 by default')
  t.match(named(algorithms.ecdsaSha256WithNull.identifier), /^unsupported: the algorithm 2a8648ce3d040302/)
  t.match(named(algorithms.dsaSha256.identifier), /^unsupported/)
  t.match(named(rsaPss('sha256', { mgf1: 'sha384' }).identifier), /another MGF1 hash/)
  t.match(named(rsaPss('sha256', { saltLength: 20 }).identifier), /salt shorter than 32 bytes/)
  t.match(named(rsaPss('sha256', { trailerField: 2 }).identifier), /trailer field/)
  t.match(named(pss(explicit(0, sha(SHA256, nullValue())), explicit(1, mgf1(sha(SHA256, nullValue()))))), /salt shorter/, 'the default salt, 20')
  t.match(named(pss(explicit(0, sha(SHA256, nullValue())), explicit(1, mgf1(sha(SHA256, nullValue()))), explicit(2, integer(0x10000)))), /salt shorter/, 'a salt too long to read')
  t.match(named(pss(explicit(0, sha(SHA256, integer(1))))), /^unsupported: RSA-PSS without/, 'a hash with a parameter other than NULL')
  t.match(named(pss(explicit(0, sha('1.2.3.4')))), /^unsupported: RSA-PSS without/, 'an unknown hash')
  t.match(named(pss(explicit(0, sha(SHA256)), explicit(1, sequence(oid('1.2.3.4'), sha(SHA256))))), /another MGF1 hash/, 'a mask other than MGF1')
  t.match(named(pss(explicit(0, sha(SHA256)), explicit(1, tlv(0x05, Buffer.alloc(0))))), /another MGF1 hash/, 'a mask that is no AlgorithmIdentifier')
  t.match(named(pss(explicit(1, mgf1(sha(SHA256))), explicit(0, sha(SHA256)))), /malformed parameters/, 'parameters out of order')
  t.match(named(Buffer.concat([pss(explicit(0, sha(SHA256))).subarray(0, 2 + 11), pss(explicit(0, sha(SHA256))).subarray(13)])), /./, 'a PSS identifier cut short')
  t.match(named(sequence(oid('1.2.840.113549.1.1.10'), sequence(), nullValue())), /bytes after its parameters/)
  t.match(named(sequence(oid('1.2.840.113549.1.1.10'), sequence(explicit(2, integer(32)), explicit(3, tlv(0x05, Buffer.alloc(0)))))), /^weak/, 'a trailer that is no INTEGER, behind a missing hash')
  t.match(named(nullValue()), /malformed algorithm identifier/)
  const cut = Buffer.from([0x30, 0x05])
  t.match(named(pss(explicit(0, cut))), /^unsupported: RSA-PSS without/, 'a hash identifier cut short')
  t.match(named(pss(explicit(0, sha(SHA256), nullValue()))), /^unsupported: RSA-PSS without/, 'bytes after the hash identifier')
  t.match(named(pss(explicit(0, sha(SHA256)), explicit(1, cut))), /another MGF1 hash/, 'a mask identifier cut short')
  t.match(named(pss(explicit(0, sha(SHA256)), explicit(1, mgf1(sha(SHA256))), explicit(2, Buffer.from([0x02, 0x05])))), /salt shorter/, 'a salt cut short')
})

t.test('public keys', async t => {
  const problem = (spki: Buffer): string | null => {
    const der = issueLeaf(root, { key: pool.take('p256'), spki })
    return keyProblem(der, readCertificateFields(der))?.problem ?? null
  }
  const rsa = pool.take('rsa2048')
  const rsaBits = (bits: number): Buffer => sequence(sequence(oid('1.2.840.113549.1.1.1'), nullValue()), bitString(sequence(integer(Buffer.concat([Buffer.from([0x80]), Buffer.alloc(bits / 8 - 1)])), integer(65537))))
  t.equal(problem(rsa.spki), null, 'RSA-2048')
  t.equal(problem(rsaBits(16384)), null, 'RSA-16384')
  t.equal(problem(rsaBits(16392)), 'unsupported', 'RSA over 16384 bits')
  t.equal(problem(rsaBits(1024)), 'too-small')
  t.equal(problem(relabelledSpki(rsa.spki, sequence(oid('1.2.840.113549.1.1.1')))), 'unsupported', 'RSA without its NULL parameter')
  const ec = (curve: string, point: Buffer): Buffer => sequence(sequence(oid('1.2.840.10045.2.1'), oid(curve)), bitString(point))
  const p256 = pool.take('p256').spki
  const point = p256.subarray(p256.length - 65)
  t.equal(problem(ec('1.2.840.10045.3.1.7', point)), null, 'a P-256 point')
  t.equal(problem(ec('1.3.132.0.34', point)), 'unsupported', 'a P-256 point called P-384')
  t.equal(problem(ec('1.2.840.10045.3.1.7', Buffer.concat([Buffer.from([4]), Buffer.alloc(64, 0xff)]))), 'unsupported', 'coordinates beyond the field')
  t.equal(problem(ec('1.2.840.10045.3.1.1', point)), 'too-small', 'P-192')
  t.equal(problem(ec('1.3.132.0.10', point)), 'unsupported', 'secp256k1')
  t.equal(problem(sequence(sequence(oid('1.2.840.10045.2.1'), sequence(integer(1))), bitString(point))), 'explicit-parameters')
  for (const curve of ['secp384r1', 'secp521r1']) {
    const spki = generateKeyPairSync('ec', { namedCurve: curve }).publicKey.export({ type: 'spki', format: 'der' })
    t.equal(problem(spki), null, curve)
  }
  t.equal(problem(sequence(sequence(oid('1.3.101.112')), bitString(Buffer.alloc(32)))), null, 'Ed25519')
  t.equal(problem(sequence(sequence(oid('1.3.101.113')), bitString(Buffer.alloc(31)))), 'unsupported', 'an Ed448 key of Ed25519\'s size')
  t.equal(problem(sequence(sequence(oid('1.3.101.112'), nullValue()), bitString(Buffer.alloc(32)))), 'unsupported', 'Ed25519 with a parameter')
  t.equal(problem(sequence(sequence(oid('1.2.840.10040.4.1')), bitString(integer(5)))), 'unsupported', 'DSA')
})

t.test('a signature checks out only with a key of the algorithm\'s type', async t => {
  const der = issueLeaf(root, { key: pool.take('p256') })
  const parts = readSignedParts(der)
  const algorithm = signatureAlgorithm(parts.algorithmIdentifier) as AllowedAlgorithm
  t.equal(verifiesWith(parts, algorithm, root.key.privateKey), true, 'the issuer\'s key (its private half verifies too)')
  t.equal(verifiesWith(parts, algorithm, pool.take('rsa2048').privateKey), false, 'an RSA key')
  t.equal(verifiesWith(parts, { ...algorithm, keyType: 'rsa', saltLength: 9999 }, pool.take('rsa2048').privateKey), false, 'an impossible salt makes verify throw: no')
})
