// The DER walker against the parsers of record, on certificates of every shape it must read: names in each
// string type with multi-valued RDNs, both time encodings, every SAN type in any number, and each extension
// that sets a field present or absent, critical or not. Every field readCertificateFields returns is compared.
import assert from 'node:assert/strict'
import { webcrypto, X509Certificate } from 'node:crypto'
import fc from 'fast-check'
import t from 'tap'
import { hangLimit } from 'mtls-test-support'
import { x509 } from 'mtls-pki/x509'
import { formatName, readCertificateFields } from '../src/internal.js'

// `pnpm test` runs this file on two runtimes, each with a seed of its own: 300 different certificates in all.
const RUNS = 150
t.setTimeout(hangLimit(120_000))

// Attribute types, as @peculiar/x509's JSON names them. I (initials, 2.5.4.43) is left out: this package prints it dotted.
const ATTRIBUTE_TYPES = ['CN', 'O', 'OU', 'C', 'L', 'ST', 'DC', 'E', 'SN', 'G', 'T', '2.5.4.5', '2.5.4.9', '0.9.2342.19200300.100.1.1', '1.3.6.1.4.1.55555.7'] as const
// Where this package's short names differ from @peculiar/x509's (E, G, T, or none), so that its text can serve as reference.
const OUR_SHORT_NAMES = {
  emailAddress: '1.2.840.113549.1.9.1',
  givenName: '2.5.4.42',
  title: '2.5.4.12',
  serialNumber: '2.5.4.5',
  street: '2.5.4.9',
  UID: '0.9.2342.19200300.100.1.1'
}
// The extensions OpenSSL handles when critical among those generated here; name constraints are reported on their own (nameConstraints).
const HANDLED_CRITICAL = new Set(['2.5.29.17', '2.5.29.15', '2.5.29.19', '2.5.29.37'])
const OID_NAME_CONSTRAINTS = '2.5.29.30'

// Characters of a name value. Control characters are left out: @peculiar/x509 escapes only the first CR, LF or
// tab of a value and no other control character, so its text is no reference for them.
const printable = fc.constantFrom(...'ABCXYZabcxyz0189 \'()+,-./:=?')
const ascii = fc.integer({ min: 0x20, max: 0x7e }).map(code => String.fromCharCode(code))
// What RFC 4514 escapes, and where.
const special = fc.constantFrom(',', '+', '"', '\\', '<', '>', ';', '#', ' ', '=')
const bmp = fc.oneof(
  fc.integer({ min: 0xa0, max: 0xd7ff }),
  fc.integer({ min: 0xe000, max: 0xfffd })
).map(code => String.fromCharCode(code))
const anyChar = fc.oneof(ascii, special, bmp, fc.constantFrom('😀', '𝔸', '\u{10ffff}'))

type StringType = 'utf8String' | 'printableString' | 'bmpString' | 'ia5String' | 'universalString'
const valueOf = (unit: fc.Arbitrary<string>, maxLength: number): fc.Arbitrary<string> => fc.string({ unit, maxLength })
  // A value of one space: @peculiar/x509 escapes it twice ("\\\\ "); RFC 4514 once, as this package does.
  .filter(value => value !== ' ')
const typedValue: fc.Arbitrary<{ type: StringType, text: string }> = fc.oneof(
  valueOf(anyChar, 24).map(text => ({ type: 'utf8String' as const, text })),
  valueOf(printable, 24).map(text => ({ type: 'printableString' as const, text })),
  // BMPString and UniversalString hold the Basic Multilingual Plane here: @peculiar/x509 writes a character
  // beyond it into a UniversalString as two UTF-16 halves, which OpenSSL rightly refuses.
  valueOf(fc.oneof(ascii, bmp), 24).map(text => ({ type: 'bmpString' as const, text })),
  valueOf(ascii, 24).map(text => ({ type: 'ia5String' as const, text })),
  valueOf(fc.oneof(ascii, bmp), 12).map(text => ({ type: 'universalString' as const, text }))
)
// A multi-valued RDN has several attributes; a JSON RDN is { type: [values] }.
const rdn = fc.array(fc.tuple(fc.constantFrom(...ATTRIBUTE_TYPES), typedValue), { minLength: 1, maxLength: 3 })
const name = fc.array(rdn, { minLength: 0, maxLength: 5 })

const date = fc.oneof(
  // UTCTime's two-digit years end at 2049; GeneralizedTime takes over in 2050 (RFC 5280 4.1.2.5).
  fc.constantFrom('1950-01-01T00:00:00Z', '1999-12-31T23:59:59Z', '2000-01-01T00:00:00Z', '2049-12-31T23:59:59Z', '2050-01-01T00:00:00Z', '9999-12-31T23:59:59Z').map(text => new Date(text)),
  fc.date({ min: new Date('1950-01-01T00:00:00Z'), max: new Date('2049-12-31T23:59:59Z'), noInvalidDate: true }),
  fc.date({ min: new Date('2050-01-01T00:00:00Z'), max: new Date('9999-12-31T23:59:59Z'), noInvalidDate: true })
).map(d => new Date(Math.floor(d.getTime() / 1000) * 1000))

const oid = fc.oneof(
  fc.constantFrom('1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2', '1.3.6.1.5.5.7.3.3', '1.3.6.1.5.5.7.3.4', '1.3.6.1.5.5.7.3.8', '1.3.6.1.5.5.7.3.9', '2.5.29.37.0'),
  fc.tuple(fc.integer({ min: 0, max: 1 }), fc.integer({ min: 0, max: 39 }), fc.array(fc.nat({ max: 0xffffffff }), { maxLength: 4 })).map(([a, b, rest]) => [a, b, ...rest].join('.')),
  // Under arc 2 the second arc can exceed 39 and shares its first byte(s) with it (2.999 encodes as 0x88 0x37).
  fc.tuple(fc.nat({ max: 100_000 }), fc.array(fc.nat({ max: 0xffffffff }), { maxLength: 3 })).map(([b, rest]) => [2, b, ...rest].join('.'))
)
const host = fc.string({ unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789-.'), minLength: 1, maxLength: 40 })
const generalName = fc.oneof(
  fc.oneof(host, fc.string({ unit: ascii, minLength: 257, maxLength: 300 })).map(value => ({ type: 'dns' as const, value })),
  fc.tuple(fc.string({ unit: ascii, minLength: 1, maxLength: 20 }), host).map(([local, domain]) => ({ type: 'email' as const, value: `${local.replace(/@/g, '')}@${domain}` })),
  fc.oneof(
    fc.tuple(host, fc.array(fc.string({ unit: fc.constantFrom(...'abc0123-._~'), minLength: 1, maxLength: 12 }), { maxLength: 4 })).map(([td, path]) => `spiffe://${td}/${path.join('/')}`),
    fc.webUrl()
  ).map(value => ({ type: 'url' as const, value })),
  fc.ipV4().map(value => ({ type: 'ip' as const, value })),
  fc.oneof(
    fc.uint8Array({ minLength: 16, maxLength: 16 }).map(bytes => Array.from({ length: 8 }, (_, i) => ((bytes[2 * i]! << 8) | bytes[2 * i + 1]!).toString(16)).join(':')),
    // Zero runs, where RFC 5952's "::" applies.
    fc.array(fc.constantFrom(0, 0, 0, 1, 0xdb8, 0xffff), { minLength: 8, maxLength: 8 }).map(groups => groups.map(group => group.toString(16)).join(':')),
    fc.ipV4().map(ip => `::ffff:${ip}`)
  ).map(value => ({ type: 'ip' as const, value })),
  fc.constantFrom({ type: 'dn' as const, value: 'CN=directory name' }, { type: 'id' as const, value: '1.2.3.4' }, { type: 'upn' as const, value: 'user@example.org' })
)

const extensions = fc.record({
  san: fc.option(fc.record({
    // Mostly a few names; now and then enough that the SAN's length takes two bytes.
    names: fc.oneof({ arbitrary: fc.array(generalName, { maxLength: 8 }), weight: 4 }, { arbitrary: fc.array(generalName, { minLength: 21, maxLength: 40 }), weight: 1 }),
    critical: fc.boolean()
  })),
  keyUsage: fc.option(fc.record({ usages: fc.oneof(fc.constantFrom(0, 1, 256, 511), fc.integer({ min: 0, max: 511 })), critical: fc.boolean() })),
  basicConstraints: fc.option(fc.record({
    ca: fc.boolean(),
    pathLength: fc.option(fc.oneof(fc.integer({ min: 0, max: 10 }), fc.integer({ min: 0, max: 0x7fffffff }))),
    critical: fc.boolean()
  })),
  extendedKeyUsage: fc.option(fc.record({ usages: fc.array(oid, { maxLength: 6 }), critical: fc.boolean() })),
  other: fc.option(fc.record({ oid: fc.constantFrom(OID_NAME_CONSTRAINTS, '1.3.6.1.4.1.55555.1'), critical: fc.boolean() })),
  reversed: fc.boolean()
})

const certificateSpec = fc.record({
  serial: fc.uint8Array({ minLength: 1, maxLength: 20 }),
  subject: name,
  issuer: fc.option(name),
  notBefore: date,
  notAfter: date,
  extensions
})
type CertificateSpec = typeof certificateSpec extends fc.Arbitrary<infer T> ? T : never

const keys = await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify'])

const jsonName = (spec: CertificateSpec['subject']): x509.JsonName => spec.map(attributes => {
  const item: Record<string, Array<{ [K in StringType]?: string }>> = {}
  for (const [type, value] of attributes) (item[type] ??= []).push({ [value.type]: value.text })
  return item as unknown as x509.JsonName[number]
})

async function build (spec: CertificateSpec): Promise<Uint8Array> {
  const { san, keyUsage, basicConstraints, extendedKeyUsage, other, reversed } = spec.extensions
  const list: x509.Extension[] = []
  if (san !== null) list.push(new x509.SubjectAlternativeNameExtension(san.names, san.critical))
  if (keyUsage !== null) list.push(new x509.KeyUsagesExtension(keyUsage.usages, keyUsage.critical))
  if (basicConstraints !== null) list.push(new x509.BasicConstraintsExtension(basicConstraints.ca, basicConstraints.pathLength ?? undefined, basicConstraints.critical))
  if (extendedKeyUsage !== null) list.push(new x509.ExtendedKeyUsageExtension(extendedKeyUsage.usages, extendedKeyUsage.critical))
  // An empty NameConstraints (SEQUENCE {}) or a private extension holding NULL.
  if (other !== null) list.push(new x509.Extension(other.oid, other.critical, new Uint8Array(other.oid === OID_NAME_CONSTRAINTS ? [0x30, 0x00] : [0x05, 0x00])))
  if (reversed) list.reverse()
  const subject = new x509.Name(jsonName(spec.subject))
  const certificate = await x509.X509CertificateGenerator.create({
    serialNumber: Buffer.from(spec.serial).toString('hex'),
    subject,
    issuer: spec.issuer === null ? subject : new x509.Name(jsonName(spec.issuer)),
    notBefore: spec.notBefore,
    notAfter: spec.notAfter,
    publicKey: keys.publicKey,
    signingKey: keys.privateKey,
    extensions: list
  })
  return new Uint8Array(certificate.rawData)
}

// RFC 5952 text of an IPv6 address (lower case, the first longest run of zero groups as "::"), as WHATWG URL writes it.
const ipText = (ip: string): string => ip.includes(':') ? new URL(`http://[${ip}]/`).hostname.slice(1, -1) : ip
const nameText = (name: x509.Name): string => new x509.Name(name.toArrayBuffer(), OUR_SHORT_NAMES).toString()

/** What the parsers of record read from the certificate, in the shape of readCertificateFields' result. */
function reference (der: Uint8Array): Record<string, unknown> {
  const certificate = new x509.X509Certificate(der)
  const native = new X509Certificate(der)
  // Node (OpenSSL) and @peculiar/x509 must agree where both read a field, or neither is a reference.
  assert.equal(native.serialNumber, certificate.serialNumber.toUpperCase(), 'serial: Node and @peculiar/x509 agree')
  assert.equal(new Date(native.validFrom).getTime(), certificate.notBefore.getTime(), 'notBefore: Node and @peculiar/x509 agree')
  assert.equal(new Date(native.validTo).getTime(), certificate.notAfter.getTime(), 'notAfter: Node and @peculiar/x509 agree')
  const san = certificate.getExtension(x509.SubjectAlternativeNameExtension)?.names.items ?? []
  const of = (type: string): string[] => san.filter(n => n.type === type).map(n => n.value)
  const basic = certificate.getExtension(x509.BasicConstraintsExtension)
  const usages = certificate.getExtension(x509.KeyUsagesExtension)?.usages
  const eku = certificate.getExtension(x509.ExtendedKeyUsageExtension)
  return {
    subject: nameText(certificate.subjectName),
    issuer: nameText(certificate.issuerName),
    serialNumber: certificate.serialNumber.toUpperCase(),
    notBefore: certificate.notBefore.getTime(),
    notAfter: certificate.notAfter.getTime(),
    commonName: certificate.subjectName.getField('CN')[0] ?? null,
    uris: of('url'),
    dnsNames: of('dns'),
    ips: of('ip').map(ipText),
    emails: of('email'),
    sanCount: san.length,
    // @peculiar/x509 reads a key usage with no bit set (BIT STRING 03 01 00) as NaN.
    keyUsage: usages === undefined ? null : Number.isNaN(usages) ? 0 : usages,
    isCa: basic?.ca ?? false,
    // @peculiar/x509 gives a path length of three bytes or more as a decimal string.
    pathLength: basic?.pathLength === undefined ? null : Number(basic.pathLength),
    extendedKeyUsages: eku === null ? null : Array.from(eku.usages, String),
    unhandledCritical: certificate.extensions.some(extension => extension.critical && !HANDLED_CRITICAL.has(extension.type)),
    nameConstraints: certificate.extensions.some(extension => extension.type === OID_NAME_CONSTRAINTS),
    version: 2,
    keyAlgorithm: '1.2.840.10045.2.1',
    keyParameters: native.publicKey.asymmetricKeyDetails?.namedCurve === 'prime256v1' ? '1.2.840.10045.3.1.7' : 'other',
    basicConstraints: basic !== null,
    basicConstraintsCritical: basic?.critical ?? false,
    subjectAltName: certificate.getExtension(x509.SubjectAlternativeNameExtension) !== null,
    subjectAltNameCritical: certificate.getExtension(x509.SubjectAlternativeNameExtension)?.critical ?? false
  }
}

function read (der: Uint8Array): Record<string, unknown> {
  const fields = readCertificateFields(der)
  // Positions in the DER and what the generator never varies (the key, the key identifiers, CRL distribution points)
  // are the verifier's business, tested with the certificates of test/security/chain-verifier-differential.test.ts.
  const {
    subject, issuer, notBefore, notAfter, innerAlgorithm, publicKey, publicKeyBits, rsaModulusBits, subjectKeyIdentifier,
    authorityKeyIdentifier, crlDistributionPoints, evaluatedElsewhere, ...rest
  } = fields
  return { ...rest, subject: formatName(der, subject), issuer: formatName(der, issuer), notBefore: notBefore.getTime(), notAfter: notAfter.getTime() }
}

t.test('property: every field the DER walker reads agrees with @peculiar/x509 and Node, on certificates of every shape', async t => {
  // What the generated certificates held, to show the shapes this property claims were tried.
  const shapes = new Map<string, number>()
  const saw = (shape: string, when: boolean): void => { if (when) shapes.set(shape, (shapes.get(shape) ?? 0) + 1) }
  let runs = 0
  await fc.assert(fc.asyncProperty(certificateSpec, async spec => {
    const der = await build(spec)
    assert.deepEqual(read(der), reference(der))
    runs++
    const values = [...spec.subject, ...(spec.issuer ?? [])].flat().map(([, value]) => value)
    for (const type of ['utf8String', 'printableString', 'bmpString', 'ia5String', 'universalString']) saw(type, values.some(value => value.type === type))
    saw('a multi-valued RDN', spec.subject.some(attributes => attributes.length > 1))
    saw('an RDN escaped', values.some(value => /[,+"\\<>;]|^[ #]| $/.test(value.text)))
    saw('a character beyond the BMP', values.some(value => /[\u{10000}-\u{10ffff}]/u.test(value.text)))
    saw('GeneralizedTime', spec.notAfter.getUTCFullYear() >= 2050 || spec.notBefore.getUTCFullYear() >= 2050)
    saw('UTCTime', spec.notAfter.getUTCFullYear() < 2050 || spec.notBefore.getUTCFullYear() < 2050)
    const names = spec.extensions.san?.names ?? []
    saw('an IPv6 SAN', names.some(n => n.type === 'ip' && n.value.includes(':')))
    saw('an IPv4 SAN', names.some(n => n.type === 'ip' && !n.value.includes(':')))
    for (const type of ['dns', 'email', 'url', 'dn', 'id', 'upn']) saw(`a ${type} SAN`, names.some(n => n.type === type))
    saw('more than 20 SANs', names.length > 20)
    saw('a SAN over 256 bytes', names.some(n => n.value.length > 256))
    saw('a key usage of no bits', spec.extensions.keyUsage?.usages === 0)
    saw('decipherOnly', ((spec.extensions.keyUsage?.usages ?? 0) & 256) !== 0)
    saw('a CA', spec.extensions.basicConstraints?.ca === true)
    saw('a path length over 127', (spec.extensions.basicConstraints?.pathLength ?? 0) > 127)
    saw('an EKU of arc 2 beyond 39', spec.extensions.extendedKeyUsage?.usages.some(usage => /^2\.([4-9]\d|\d{3,})/.test(usage)) === true)
    saw('an unhandled critical extension', spec.extensions.other?.critical === true && spec.extensions.other.oid !== OID_NAME_CONSTRAINTS)
    saw('name constraints', spec.extensions.other?.oid === OID_NAME_CONSTRAINTS)
  }), { numRuns: RUNS })
  t.equal(runs, RUNS, `${RUNS} generated certificates read alike`)
  const wanted = ['utf8String', 'printableString', 'bmpString', 'ia5String', 'universalString', 'a multi-valued RDN', 'an RDN escaped', 'a character beyond the BMP', 'GeneralizedTime', 'UTCTime',
    'an IPv6 SAN', 'an IPv4 SAN', 'a dns SAN', 'a email SAN', 'a url SAN', 'a dn SAN', 'a id SAN', 'a upn SAN', 'more than 20 SANs', 'a SAN over 256 bytes',
    'a key usage of no bits', 'decipherOnly', 'a CA', 'a path length over 127', 'an EKU of arc 2 beyond 39', 'an unhandled critical extension', 'name constraints']
  t.same(wanted.filter(shape => shapes.get(shape) === undefined), [], 'every shape was generated at least once')
  t.comment([...shapes].map(([shape, count]) => `${shape}: ${count}`).join(', '))
})
