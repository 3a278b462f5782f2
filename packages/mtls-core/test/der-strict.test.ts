// What the DER walker refuses and reads for ChainVerifier: strict DER (checkStrictDer), the certificate fields the
// verifier's checks need (version, algorithm identifiers, the public key, key identifiers, CRL distribution points),
// and CRLs (their scope, critical extensions, entries).
import t from 'tap'
import {
  KeyPool, bitString, clientExtensions, explicit, extensions as ext, forgeCertificate, forgeCrl, generalNames, integer, issueLeaf, keyIdentifier,
  name, nullValue, octetString, oid, selfSignedCa, sequence, set, tlv, type Extension
} from 'mtls-test-support/certificate-forge'
import { canonicalName, checkStrictDer, readCertificateFields, readCrlFields, readSignedParts } from '../src/der.js'

const pool = new KeyPool({ p256: 2 })
const root = selfSignedCa({ key: pool.take('p256'), subject: name(['CN', 'der-strict root']) })
const hex = (text: string): Uint8Array => Buffer.from(text.replace(/ /g, ''), 'hex')
const leafWith = (...extensions: Extension[]): Buffer => {
  const key = pool.take('p256')
  return issueLeaf(root, { key, extensions: [...clientExtensions(key, root).filter(extension => !extensions.some(other => other.oid === extension.oid)), ...extensions] })
}
const rawExtension = (dotted: string, value: Buffer, critical = false): Extension => ({ oid: dotted, critical, value })

t.test('checkStrictDer refuses what DER forbids and BER allows', async t => {
  const refused: Array<[string, string, RegExp]> = [
    ['truncated', '30 05 02 01', /truncated/],
    ['a high tag number', '1f 81 00', /high tag/],
    ['an indefinite length', '30 80 00 00', /bad length/],
    ['a length of five bytes', '30 85 00 00 00 00 01 00', /bad length/],
    ['a length with a leading zero byte', '04 82 00 01 00', /leading zeros/],
    ['a long-form length under 128', '04 81 01 00', /under 128/],
    ['a constructed OCTET STRING', '24 03 04 01 00', /constructed universal/],
    ['a BOOLEAN of 01', '01 01 01', /BOOLEAN/],
    ['an empty INTEGER', '02 00', /empty INTEGER/],
    ['an INTEGER with a needless 00', '02 02 00 7f', /shortest form/],
    ['an INTEGER with a needless ff', '02 02 ff 80', /shortest form/],
    ['an empty BIT STRING', '03 00', /malformed BIT STRING/],
    ['a BIT STRING of 8 unused bits', '03 02 08 00', /malformed BIT STRING/],
    ['an empty BIT STRING with unused bits', '03 01 01', /malformed BIT STRING/],
    ['a BIT STRING whose unused bits are set', '03 02 01 01', /unused bits set/],
    ['a NULL with contents', '05 01 00', /NULL/],
    ['an empty OID', '06 00', /malformed OID/],
    ['an OID ending mid-arc', '06 02 2a 86', /malformed OID/],
    ['an OID arc with a leading zero', '06 03 2a 80 01', /leading zero/],
    ['a UTF8String that is not UTF-8', '0c 02 c3 28', /./],
    ['a BMPString of odd length', '1e 03 00 41 00', /odd length/],
    ['a UniversalString of 5 bytes', '1c 05 00 00 00 41 00', /4-byte/],
    ['a UniversalString beyond Unicode', '1c 04 00 11 00 00', /beyond Unicode/],
    ['an extension value with bytes after it', '30 0b 06 03 55 1d 13 04 04 30 00 05 00', /after an extension value/],
    ['an RSA key with bytes after it', '30 1c 30 0d 06 09 2a 86 48 86 f7 0d 01 01 01 05 00 03 0b 00 30 06 02 01 01 02 01 03 05 00', /after an RSA key/],
    ['bytes after the element', '05 00 05 00', /after the element/]
  ]
  for (const [what, der, message] of refused) t.throws(() => checkStrictDer(hex(der)), { message }, what)
  t.throws(() => checkStrictDer(new Uint8Array(0)), /truncated/, 'nothing at all')
  const nested = (depth: number): Buffer => depth === 0 ? nullValue() : sequence(nested(depth - 1))
  t.throws(() => checkStrictDer(nested(40)), /nested too deep/, 'nesting 40 deep')
  t.doesNotThrow(() => checkStrictDer(nested(30)), 'nesting 30 deep is fine')
  t.doesNotThrow(() => checkStrictDer(sequence(tlv(0x1e, Buffer.from([0, 0x41])), tlv(0x1c, Buffer.from([0, 0, 0, 0x41])), tlv(0x0a, Buffer.from([1])), integer(0x80))), 'valid strings and integers')
  t.doesNotThrow(() => checkStrictDer(leafWith()), 'a forged certificate is strict DER')
})

t.test('the certificate fields the verifier reads', async t => {
  const key = pool.take('p256')
  const fields = readCertificateFields(issueLeaf(root, { key }))
  t.equal(fields.version, 2)
  t.equal(fields.keyAlgorithm, '1.2.840.10045.2.1')
  t.equal(fields.keyParameters, '1.2.840.10045.3.1.7')
  t.equal(fields.subjectKeyIdentifier, keyIdentifier(key.spki).toString('hex').toUpperCase())
  t.same(fields.authorityKeyIdentifier, { keyIdentifier: (root.keyIdentifier as Buffer).toString('hex').toUpperCase(), issuer: null, otherIssuerNames: false, serialNumber: null })
  t.equal(readCertificateFields(issueLeaf(root, { key, version: null })).version, 0, 'a version 1 certificate')

  const withIssuer = readCertificateFields(leafWith(rawExtension('2.5.29.35', sequence(tlv(0xa1, explicit(4, root.name), tlv(0x86, Buffer.from('x'))), tlv(0x82, Buffer.from([0x05]))))))
  t.match(withIssuer.authorityKeyIdentifier, { keyIdentifier: null, otherIssuerNames: true, serialNumber: '05' }, 'an authority key identifier by issuer and serial')

  const points = readCertificateFields(leafWith(ext.crlDistributionPoints([{ uris: ['http://crl.test/a.crl'] }, { relativeCommonName: 'shard' }, { uris: ['http://crl.test/b.crl'], reasons: 2, crlIssuer: root.name }])))
  t.match(points.crlDistributionPoints, [{ relativeName: false, reasons: false, crlIssuer: false }, { fullName: null, relativeName: true }, { reasons: true, crlIssuer: true }])

  t.same(readCertificateFields(leafWith(ext.nsCertType(1), ext.proxyCertInfo(false), ext.policyConstraints(0))).evaluatedElsewhere, ['nsCertType', 'proxyCertInfo', 'policy constraints'])

  const rsa = new KeyPool({ rsa1024: 1 }).take('rsa1024')
  t.equal(readCertificateFields(issueLeaf(root, { key: rsa })).rsaModulusBits, 1024)
  t.equal(readCertificateFields(issueLeaf(root, { key, spki: sequence(sequence(oid('1.2.840.10045.2.1'), sequence(integer(1))), bitString(Buffer.from([4]))) })).keyParameters, 'explicit')
  t.equal(readCertificateFields(issueLeaf(root, { key, spki: sequence(sequence(oid('1.3.101.112'), nullValue()), bitString(Buffer.alloc(32))) })).keyParameters, 'null')
  t.equal(readCertificateFields(issueLeaf(root, { key, spki: sequence(sequence(oid('1.3.101.112'), integer(1)), bitString(Buffer.alloc(32))) })).keyParameters, 'other')
})

t.test('certificates the DER walker refuses to read', async t => {
  const key = pool.take('p256')
  const refused: Array<[string, () => Buffer]> = [
    ['a public key with unused bits', () => issueLeaf(root, { key, spki: sequence(sequence(oid('1.3.101.112')), bitString(Buffer.alloc(32), 1)) })],
    ['bytes after the public key', () => issueLeaf(root, { key, spki: sequence(sequence(oid('1.3.101.112')), bitString(Buffer.alloc(32)), nullValue()) })],
    ['bytes after the key parameters', () => issueLeaf(root, { key, spki: sequence(sequence(oid('1.3.101.112'), nullValue(), nullValue()), bitString(Buffer.alloc(32))) })],
    ['bytes after the RSA key', () => issueLeaf(root, { key, spki: sequence(sequence(oid('1.2.840.113549.1.1.1'), nullValue()), bitString(Buffer.concat([sequence(integer(0xc5), integer(3)), nullValue()]))) })],
    ['bytes after the RSA exponent', () => issueLeaf(root, { key, spki: sequence(sequence(oid('1.2.840.113549.1.1.1'), nullValue()), bitString(sequence(integer(0xc5), integer(3), nullValue()))) })],
    ['a negative RSA modulus', () => issueLeaf(root, { key, spki: sequence(sequence(oid('1.2.840.113549.1.1.1'), nullValue()), bitString(sequence(tlv(0x02, Buffer.from([0x85])), integer(3)))) })],
    ['authority key identifier fields out of order', () => leafWith(rawExtension('2.5.29.35', sequence(tlv(0x82, Buffer.from([1])), tlv(0x80, Buffer.from([1])))))],
    ['an unknown authority key identifier field', () => leafWith(rawExtension('2.5.29.35', sequence(tlv(0xa0, nullValue()))))],
    ['an empty authority serial', () => leafWith(rawExtension('2.5.29.35', sequence(tlv(0x82, Buffer.alloc(0)))))],
    ['bytes after an authority directoryName', () => leafWith(rawExtension('2.5.29.35', sequence(tlv(0xa1, tlv(0xa4, root.name, nullValue())))))],
    ['bytes after a distribution point name', () => leafWith(rawExtension('2.5.29.31', sequence(sequence(tlv(0xa0, tlv(0xa0, ...generalNames({ uris: ['u'] })), nullValue())))))],
    ['an unknown distribution point name', () => leafWith(rawExtension('2.5.29.31', sequence(sequence(tlv(0xa0, tlv(0xa2, nullValue()))))))],
    ['an empty distribution point name', () => leafWith(rawExtension('2.5.29.31', sequence(sequence(tlv(0xa0, tlv(0xa0))))))],
    ['bytes after a distribution point directoryName', () => leafWith(rawExtension('2.5.29.31', sequence(sequence(tlv(0xa0, tlv(0xa0, tlv(0xa4, root.name, nullValue())))))))],
    ['distribution point fields out of order', () => leafWith(rawExtension('2.5.29.31', sequence(sequence(tlv(0x81, Buffer.from([0x06, 0x40])), tlv(0xa0, tlv(0xa0, ...generalNames({ uris: ['u'] })))))))],
    ['an unknown distribution point field', () => leafWith(rawExtension('2.5.29.31', sequence(sequence(tlv(0x80, Buffer.from([1]))))))],
    ['an empty distribution point', () => leafWith(rawExtension('2.5.29.31', sequence(sequence())))],
    ['no distribution point', () => leafWith(rawExtension('2.5.29.31', sequence()))],
    ['malformed basic constraints', () => leafWith(rawExtension('2.5.29.19', sequence(nullValue())))],
    ['a key usage of nine unused bits', () => leafWith(rawExtension('2.5.29.15', Buffer.from([0x03, 0x02, 0x09, 0x80])))],
    ['bytes after the key usage', () => leafWith(rawExtension('2.5.29.15', Buffer.concat([bitString(Buffer.from([0x80]), 7), nullValue()])))],
    ['bytes after an extension value', () => forgeCertificate({ subject: name(['CN', 'x']), key, issuer: root, rawExtensions: [sequence(oid('1.3.6.1.4.1.55555.1'), octetString(nullValue()), nullValue())] })],
    ['a version of 5', () => issueLeaf(root, { key, version: 5 })],
    ['February 29 of a common year', () => issueLeaf(root, { key, notAfterRaw: tlv(0x17, Buffer.from('270229000000Z')) })],
    ['a thirteenth month', () => issueLeaf(root, { key, notAfterRaw: tlv(0x17, Buffer.from('271301000000Z')) })]
  ]
  for (const [what, build] of refused) t.throws(() => readCertificateFields(build()), { code: 'ERR_MTLS_CERTIFICATE_MALFORMED' }, what)
  t.throws(() => readCertificateFields(issueLeaf(root, { key, afterKey: [tlv(0x82, Buffer.from([0, 1])), tlv(0x81, Buffer.from([0, 1]))] })), { code: 'ERR_MTLS_CERTIFICATE_MALFORMED' }, 'unique identifiers out of order')
  t.throws(() => readCertificateFields(issueLeaf(root, { key, afterKey: [nullValue()] })), { code: 'ERR_MTLS_CERTIFICATE_MALFORMED' }, 'an unknown field after the key')
  t.equal(readCertificateFields(issueLeaf(root, { key, afterKey: [tlv(0x81, Buffer.from([0, 1])), tlv(0x82, Buffer.from([0, 1]))] })).version, 2, 'issuer and subject unique identifiers')
  t.equal(readCertificateFields(issueLeaf(root, { key, spki: sequence(sequence(oid('1.2.840.113549.1.1.1'), nullValue()), bitString(sequence(integer(0), integer(3)))) })).rsaModulusBits, 0, 'an RSA modulus of zero')
  const signed = issueLeaf(root, { key })
  t.throws(() => readSignedParts(Buffer.concat([signed, nullValue()])), { code: 'ERR_MTLS_CERTIFICATE_MALFORMED', message: /trailing bytes/ })
  t.throws(() => readSignedParts(sequence(sequence(), sequence(oid('1.2.840.10045.4.3.2')), tlv(0x03, Buffer.alloc(0)))), { message: /empty signature/ })
  t.equal(readCertificateFields(issueLeaf(root, { key, notAfterRaw: tlv(0x18, Buffer.from('20280229000000Z')) })).notAfter.toISOString(), '2028-02-29T00:00:00.000Z', 'February 29 of a leap year')
  t.equal(readCertificateFields(issueLeaf(root, { key, notAfterRaw: tlv(0x18, Buffer.from('00500101000000Z')) })).notAfter.getUTCFullYear(), 50, 'a GeneralizedTime year under 100 is that year')
})

t.test('CRLs: scope, critical extensions, entries', async t => {
  const idp = readCrlFields(forgeCrl({ issuer: root, extraExtensions: [ext.issuingDistributionPoint({ uris: ['http://crl.test/a.crl'], onlyUser: true, onlySomeReasons: 2, indirect: true })] }))
  t.match(idp.issuingDistributionPoint, { relativeName: false, onlyUserCerts: true, onlyCaCerts: false, onlySomeReasons: true, indirectCrl: true, onlyAttributeCerts: false })
  t.equal(idp.version, 1)
  t.equal(idp.unhandledCritical, false, 'a critical issuing distribution point is handled')
  t.match(readCrlFields(forgeCrl({ issuer: root, extraExtensions: [ext.issuingDistributionPoint({ relativeCommonName: 'a', onlyCa: true, onlyAttributes: true })] })).issuingDistributionPoint, { fullName: null, relativeName: true, onlyCaCerts: true, onlyAttributeCerts: true })
  t.equal(readCrlFields(forgeCrl({ issuer: root, extraExtensions: [ext.deltaCrlIndicator(1)] })).deltaCrlIndicator, true)
  t.equal(readCrlFields(forgeCrl({ issuer: root, extraExtensions: [ext.unknown(true)] })).unhandledCritical, true)
  const certificateIssuer: Extension = { oid: '2.5.29.29', critical: true, value: sequence(explicit(4, root.name)) }
  t.equal(readCrlFields(forgeCrl({ issuer: root, revoked: [{ serial: Buffer.from([1]), extensions: [certificateIssuer, ext.reasonCode(1)] }] })).unhandledCritical, false, 'a critical certificateIssuer entry extension is handled')
  t.equal(readCrlFields(forgeCrl({ issuer: root, revoked: [{ serial: Buffer.from([1]), extensions: [ext.reasonCode(1, true)] }] })).unhandledCritical, true, 'another critical entry extension is not')
  t.equal(readCrlFields(forgeCrl({ issuer: root, nextUpdate: null })).nextUpdate, null)

  const refused: Array<[string, () => Buffer]> = [
    ['issuing distribution point fields out of order', () => forgeCrl({ issuer: root, extraExtensions: [rawExtension('2.5.29.28', sequence(tlv(0x82, Buffer.from([0xff])), tlv(0x81, Buffer.from([0xff]))))] })],
    ['an unknown issuing distribution point field', () => forgeCrl({ issuer: root, extraExtensions: [rawExtension('2.5.29.28', sequence(tlv(0xa1, nullValue())))] })],
    ['an issuing distribution point boolean of two bytes', () => forgeCrl({ issuer: root, extraExtensions: [rawExtension('2.5.29.28', sequence(tlv(0x81, Buffer.from([0xff, 0xff]))))] })],
    ['an entry with bytes after its extensions', () => crlWithEntry(sequence(integer(1), tlv(0x17, Buffer.from('250101000000Z')), sequence(), nullValue()))],
    ['an entry whose revocation date is no time', () => crlWithEntry(sequence(integer(1), nullValue()))],
    ['an extension twice in an entry', () => forgeCrl({ issuer: root, revoked: [{ serial: Buffer.from([1]), extensions: [ext.reasonCode(1), ext.reasonCode(2)] }] })],
    ['bytes after the CRL extensions', () => crlWithTail(explicit(0, sequence(), nullValue()))],
    ['fields after the CRL extensions', () => crlWithTail(Buffer.concat([explicit(0, sequence()), nullValue()]))]
  ]
  for (const [what, build] of refused) t.throws(() => readCrlFields(build()), { code: 'ERR_MTLS_CERTIFICATE_MALFORMED' }, what)
})

t.test('names compare as OpenSSL compares them', async t => {
  const of = (der: Buffer): string => canonicalName(der, { start: 2, end: der.length })
  t.equal(of(name(['CN', '  Order   Service '])), of(sequence(set(sequence(oid('2.5.4.3'), tlv(0x13, Buffer.from('order service')))))), 'case, white space and string type do not matter')
  t.not(of(name(['CN', 'order-service'])), of(name(['CN', 'order service'])))
  const multi = (first: Buffer, second: Buffer): Buffer => sequence(set(first, second))
  const a = sequence(oid('2.5.4.3'), tlv(0x0c, Buffer.from('a')))
  const b = sequence(oid('2.5.4.10'), tlv(0x0c, Buffer.from('b')))
  t.equal(of(multi(a, b)), of(multi(b, a)), 'the attributes of a multi-valued RDN in any order')
  t.not(of(multi(a, b)), of(sequence(set(a), set(b))), 'but one RDN of two attributes is not two RDNs')
})

// A CRL whose revokedCertificates hold `entry`, signed.
function crlWithEntry (entry: Buffer): Buffer {
  return signedCrl(sequence(integer(1), sequence(oid('1.2.840.10045.4.3.2')), root.name, tlv(0x17, Buffer.from('250101000000Z')), sequence(entry)))
}

function crlWithTail (tail: Buffer): Buffer {
  return signedCrl(sequence(integer(1), sequence(oid('1.2.840.10045.4.3.2')), root.name, tlv(0x17, Buffer.from('250101000000Z')), tail))
}

// The signature does not matter to the reader: a fixed one.
function signedCrl (tbs: Buffer): Buffer {
  return sequence(tbs, sequence(oid('1.2.840.10045.4.3.2')), bitString(Buffer.from([0x30, 0x00])))
}
