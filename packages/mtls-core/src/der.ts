// A minimal DER walker for the few certificate fields Node does not expose (typed SANs, key usage bits,
// the subject CN). It runs once per TLS connection, so it reads in place: no copies, no regular
// expressions, no full ASN.1 parse (a full @peculiar/x509 parse costs ~1 ms; this costs ~1 µs).
// Its results are checked against @peculiar/x509, the parser of record, in the tests.
import { CertificateError } from './errors.js'

const TAG_BOOLEAN = 0x01
const TAG_INTEGER = 0x02
const TAG_BIT_STRING = 0x03
const TAG_OCTET_STRING = 0x04
const TAG_OID = 0x06
const TAG_UTF8_STRING = 0x0c
const TAG_SEQUENCE = 0x30
const TAG_SET = 0x31
const TAG_PRINTABLE_STRING = 0x13
const TAG_TELETEX_STRING = 0x14
const TAG_IA5_STRING = 0x16
const TAG_UTC_TIME = 0x17
const TAG_GENERALIZED_TIME = 0x18
const TAG_UNIVERSAL_STRING = 0x1c
const TAG_BMP_STRING = 0x1e
const TAG_VERSION = 0xa0
const TAG_ISSUER_UID = 0x81
const TAG_SUBJECT_UID = 0x82
const TAG_EXTENSIONS = 0xa3
// GeneralName choices (RFC 5280 4.2.1.6), context-specific and primitive.
const SAN_EMAIL = 0x81
const SAN_DNS = 0x82
const SAN_URI = 0x86
const SAN_IP = 0x87

// OID contents (without tag and length).
const OID_CN = [0x55, 0x04, 0x03]
const OID_KEY_USAGE = [0x55, 0x1d, 0x0f]
const OID_SAN = [0x55, 0x1d, 0x11]
const OID_BASIC_CONSTRAINTS = [0x55, 0x1d, 0x13]
const OID_EXT_KEY_USAGE = [0x55, 0x1d, 0x25]
const OID_NAME_CONSTRAINTS = [0x55, 0x1d, 0x1e]
// Extensions OpenSSL understands when they are critical (its X509_supported_extension list, less name
// constraints, which are reported on their own); any other critical extension makes it refuse the certificate.
const SUPPORTED_CRITICAL = [
  OID_KEY_USAGE, OID_SAN, OID_BASIC_CONSTRAINTS, OID_EXT_KEY_USAGE,
  [0x55, 0x1d, 0x20], // certificatePolicies
  [0x55, 0x1d, 0x1f], // cRLDistributionPoints
  [0x55, 0x1d, 0x24], // policyConstraints
  [0x55, 0x1d, 0x21], // policyMappings
  [0x55, 0x1d, 0x36], // inhibitAnyPolicy
  [0x60, 0x86, 0x48, 0x01, 0x86, 0xf8, 0x42, 0x01, 0x01], // netscape-cert-type
  [0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x01, 0x07], // sbgp-ipAddrBlock
  [0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x01, 0x08], // sbgp-autonomousSysNum
  [0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x01, 0x0e], // proxyCertInfo
  [0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x05] // OCSP noCheck
]

/** Key usage bits (RFC 5280 4.2.1.3) as this package reports them. */
export const KEY_USAGE = Object.freeze({
  digitalSignature: 1 << 0,
  nonRepudiation: 1 << 1,
  keyEncipherment: 1 << 2,
  dataEncipherment: 1 << 3,
  keyAgreement: 1 << 4,
  keyCertSign: 1 << 5,
  cRLSign: 1 << 6,
  encipherOnly: 1 << 7,
  decipherOnly: 1 << 8
})

/** The extended key usages (RFC 5280 4.2.1.12) a TLS server and a TLS client need, as `extendedKeyUsages` lists them. */
export const TLS_EXTENDED_KEY_USAGE = Object.freeze({ server: '1.3.6.1.5.5.7.3.1', client: '1.3.6.1.5.5.7.3.2' })

/** Where a Name lies in the DER; `formatName` turns it into text when someone asks. */
export interface NameRange {
  readonly start: number
  readonly end: number
}

/** What the DER walker reads from a certificate. */
export interface CertificateFields {
  readonly subject: NameRange
  readonly issuer: NameRange
  readonly serialNumber: string
  readonly notBefore: Date
  readonly notAfter: Date
  readonly commonName: string | null
  readonly uris: string[]
  readonly dnsNames: string[]
  readonly ips: string[]
  readonly emails: string[]
  /** Number of GeneralNames in the SAN extension, of any type. */
  readonly sanCount: number
  /** Bit set of KEY_USAGE; `null` when the extension is absent. */
  readonly keyUsage: number | null
  /** `CA:TRUE` in basic constraints. */
  readonly isCa: boolean
  /** Basic constraints' pathLenConstraint of a CA, `null` when absent. */
  readonly pathLength: number | null
  /** Extended key usage OIDs in dotted form; `null` when the extension is absent. */
  readonly extendedKeyUsages: string[] | null
  /** A critical extension OpenSSL would not understand (so it refuses the certificate). */
  readonly unhandledCritical: boolean
  /** The name constraints extension is present (a CA's limit on the names below it). */
  readonly nameConstraints: boolean
}

/** One DER element: its tag, and where its contents lie. */
export interface Tlv {
  tag: number
  /** First byte of the contents. */
  start: number
  /** One past the last byte of the contents. */
  end: number
}

// Walked once per content: a client reconnects with the same certificate for hours, and each connection's
// DER is a buffer of its own (walking one costs about 25 µs of server CPU with what it allocates). Keyed by
// the bytes, never by the buffer: a buffer written over in place must not keep the fields of what it held.
// Bounded, oldest out.
const byContent = new Map<string, CertificateFields>()
const MAX_BY_CONTENT = 1024

/**
 * Reads the fields above from a DER certificate; throws CertificateError when it is not one. The result is
 * frozen and shared by every caller with the same bytes: `notBefore` and `notAfter` are Dates that only
 * mtls-core reads (it hands out copies), never to be changed.
 */
export function readCertificateFields (der: Uint8Array): CertificateFields {
  const key = Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString('latin1')
  let fields = byContent.get(key)
  if (fields === undefined) {
    try {
      fields = freeze(read(der))
    } catch (err) {
      if (err instanceof CertificateError) throw err
      throw new CertificateError('ERR_MTLS_CERTIFICATE_MALFORMED', `not a DER X.509 certificate (${(err as Error).message})`, { cause: err })
    }
    if (byContent.size >= MAX_BY_CONTENT) byContent.delete(byContent.keys().next().value as string)
    byContent.set(key, fields)
  }
  return fields
}

function freeze (fields: CertificateFields): CertificateFields {
  for (const value of Object.values(fields)) if (Array.isArray(value) || value instanceof Date) Object.freeze(value)
  return Object.freeze(fields)
}

function read (der: Uint8Array): CertificateFields {
  const certificate = tlv(der, 0, der.length, TAG_SEQUENCE)
  // Bytes after the certificate are not part of it: two certificates glued together are not one.
  if (certificate.end !== der.length) throw new Error('bytes after the certificate')
  const tbs = tlv(der, certificate.start, certificate.end, TAG_SEQUENCE)
  let at = tbs.start
  let field = tlv(der, at, tbs.end)
  if (field.tag === TAG_VERSION) field = tlv(der, field.end, tbs.end)
  expect(field, TAG_INTEGER)
  const serialNumber = serialHex(der, field)
  const signature = tlv(der, field.end, tbs.end, TAG_SEQUENCE)
  const issuer = tlv(der, signature.end, tbs.end, TAG_SEQUENCE)
  const validity = tlv(der, issuer.end, tbs.end, TAG_SEQUENCE)
  const notBeforeTlv = tlv(der, validity.start, validity.end)
  const notAfterTlv = tlv(der, notBeforeTlv.end, validity.end)
  const subject = tlv(der, validity.end, tbs.end, TAG_SEQUENCE)
  const spki = tlv(der, subject.end, tbs.end, TAG_SEQUENCE)
  scanName(der, issuer)

  const fields = {
    subject: { start: subject.start, end: subject.end },
    issuer: { start: issuer.start, end: issuer.end },
    serialNumber,
    notBefore: time(der, notBeforeTlv),
    notAfter: time(der, notAfterTlv),
    commonName: scanName(der, subject),
    uris: [] as string[],
    dnsNames: [] as string[],
    ips: [] as string[],
    emails: [] as string[],
    sanCount: 0,
    keyUsage: null as number | null,
    isCa: false,
    pathLength: null as number | null,
    extendedKeyUsages: null as string[] | null,
    unhandledCritical: false,
    nameConstraints: false
  }

  at = spki.end
  while (at < tbs.end) {
    field = tlv(der, at, tbs.end)
    at = field.end
    if (field.tag === TAG_ISSUER_UID || field.tag === TAG_SUBJECT_UID) continue
    if (field.tag !== TAG_EXTENSIONS) throw new Error(`unexpected tag 0x${field.tag.toString(16)} in TBSCertificate`)
    const extensions = tlv(der, field.start, field.end, TAG_SEQUENCE)
    const seen: Tlv[] = []
    for (let ext = extensions.start; ext < extensions.end;) {
      const extension = tlv(der, ext, extensions.end, TAG_SEQUENCE)
      ext = extension.end
      const oid = tlv(der, extension.start, extension.end, TAG_OID)
      // RFC 5280 4.2: an extension appears once. A second basicConstraints would let CA:TRUE read as CA:FALSE.
      if (seen.some(other => sameBytes(der, other, oid))) throw new Error(`extension ${dottedOid(der, oid)} appears twice`)
      seen.push(oid)
      let value = tlv(der, oid.end, extension.end)
      if (value.tag === TAG_BOOLEAN) {
        if (der[value.start] !== 0 && !SUPPORTED_CRITICAL.some(known => oidIs(der, oid, known))) fields.unhandledCritical = true
        value = tlv(der, value.end, extension.end)
      }
      expect(value, TAG_OCTET_STRING)
      if (oidIs(der, oid, OID_NAME_CONSTRAINTS)) fields.nameConstraints = true
      if (oidIs(der, oid, OID_SAN)) readSan(der, value, fields)
      else if (oidIs(der, oid, OID_KEY_USAGE)) fields.keyUsage = keyUsage(der, value)
      else if (oidIs(der, oid, OID_BASIC_CONSTRAINTS)) Object.assign(fields, basicConstraints(der, value))
      else if (oidIs(der, oid, OID_EXT_KEY_USAGE)) fields.extendedKeyUsages = extendedKeyUsages(der, value)
    }
  }
  return fields
}

/** What a certificate revocation list says, and the parts its signature covers. */
export interface CrlFields extends SignedParts {
  readonly issuer: NameRange
  readonly thisUpdate: Date
  readonly nextUpdate: Date | null
  /** Serial numbers of the revoked certificates, uppercase hex as `CertificateFields.serialNumber`. */
  readonly revoked: ReadonlySet<string>
}

/** The part of a certificate or CRL its issuer signed, the signature algorithm (dotted OID) and the signature. */
export interface SignedParts {
  readonly signed: Uint8Array
  readonly signatureAlgorithm: string
  readonly signature: Uint8Array
}

/** Splits a DER certificate or CRL (both `SEQUENCE { tbs, algorithm, BIT STRING }`) into what signature verification needs. */
export function readSignedParts (der: Uint8Array): SignedParts {
  try {
    return signedParts(der)
  } catch (err) {
    throw new CertificateError('ERR_MTLS_CERTIFICATE_MALFORMED', `not a signed DER structure (${(err as Error).message})`, { cause: err })
  }
}

function signedParts (der: Uint8Array): SignedParts & { tbs: Tlv } {
  const outer = tlv(der, 0, der.length, TAG_SEQUENCE)
  if (outer.end !== der.length) throw new Error('trailing bytes')
  const tbs = tlv(der, outer.start, outer.end, TAG_SEQUENCE)
  const algorithm = tlv(der, tbs.end, outer.end, TAG_SEQUENCE)
  const signature = tlv(der, algorithm.end, outer.end, TAG_BIT_STRING)
  return {
    tbs,
    signed: der.subarray(outer.start, tbs.end),
    signatureAlgorithm: dottedOid(der, tlv(der, algorithm.start, algorithm.end, TAG_OID)),
    // A BIT STRING's first content byte counts unused bits; a signature has none.
    signature: der.subarray(signature.start + 1, signature.end)
  }
}

/** Reads a DER CRL (RFC 5280 5.1); throws CertificateError (`ERR_MTLS_CERTIFICATE_MALFORMED`) when it is not one. */
export function readCrlFields (der: Uint8Array): CrlFields {
  try {
    const { tbs, signed, signatureAlgorithm, signature } = signedParts(der)
    let field = tlv(der, tbs.start, tbs.end)
    if (field.tag === TAG_INTEGER) field = tlv(der, field.end, tbs.end)
    expect(field, TAG_SEQUENCE) // the signature algorithm, repeated
    const issuer = tlv(der, field.end, tbs.end, TAG_SEQUENCE)
    scanName(der, issuer)
    const thisUpdate = tlv(der, issuer.end, tbs.end)
    let nextUpdate: Date | null = null
    const revoked = new Set<string>()
    let at = thisUpdate.end
    if (at < tbs.end) {
      field = tlv(der, at, tbs.end)
      if (field.tag === TAG_UTC_TIME || field.tag === TAG_GENERALIZED_TIME) {
        nextUpdate = time(der, field)
        at = field.end
      }
    }
    if (at < tbs.end) {
      field = tlv(der, at, tbs.end)
      if (field.tag === TAG_SEQUENCE) {
        for (let entry = field.start; entry < field.end;) {
          const revokedEntry = tlv(der, entry, field.end, TAG_SEQUENCE)
          entry = revokedEntry.end
          revoked.add(serialHex(der, tlv(der, revokedEntry.start, revokedEntry.end, TAG_INTEGER)))
        }
      }
    }
    return { issuer: { start: issuer.start, end: issuer.end }, thisUpdate: time(der, thisUpdate), nextUpdate, revoked, signed, signatureAlgorithm, signature }
  } catch (err) {
    throw new CertificateError('ERR_MTLS_CERTIFICATE_MALFORMED', `not a DER X.509 CRL (${(err as Error).message})`, { cause: err })
  }
}

/** The DER element at `at`, within `limit`; throws (`truncated`, `bad length`, a wrong tag) for anything else. */
export function tlv (der: Uint8Array, at: number, limit: number, expectedTag?: number): Tlv {
  if (at + 2 > limit) throw new Error('truncated')
  const tag = der[at] as number
  let length = der[at + 1] as number
  let start = at + 2
  if (length & 0x80) {
    const bytes = length & 0x7f
    if (bytes === 0 || bytes > 4 || start + bytes > limit) throw new Error('bad length')
    length = 0
    for (let i = 0; i < bytes; i++) length = length * 256 + (der[start + i] as number)
    start += bytes
  }
  const end = start + length
  if (end > limit) throw new Error('truncated')
  const result = { tag, start, end }
  if (expectedTag !== undefined) expect(result, expectedTag)
  return result
}

function expect (field: Tlv, tag: number): void {
  if (field.tag !== tag) throw new Error(`expected tag 0x${tag.toString(16)}, found 0x${field.tag.toString(16)}`)
}

function sameBytes (der: Uint8Array, a: Tlv, b: Tlv): boolean {
  if (a.end - a.start !== b.end - b.start) return false
  for (let i = 0; i < a.end - a.start; i++) if (der[a.start + i] !== der[b.start + i]) return false
  return true
}

function oidIs (der: Uint8Array, oid: Tlv, expected: number[]): boolean {
  if (oid.end - oid.start !== expected.length) return false
  for (let i = 0; i < expected.length; i++) if (der[oid.start + i] !== expected[i]) return false
  return true
}

function serialHex (der: Uint8Array, field: Tlv): string {
  let start = field.start
  if (der[start] === 0 && field.end - start > 1) start++ // the sign byte
  return Buffer.from(der.buffer, der.byteOffset + start, field.end - start).toString('hex').toUpperCase()
}

function time (der: Uint8Array, field: Tlv): Date {
  let at = field.start
  const digits = (count: number): number => {
    let value = 0
    for (let i = 0; i < count; i++, at++) {
      const c = (der[at] as number) - 0x30
      if (c < 0 || c > 9 || at >= field.end) throw new Error('bad time')
      value = value * 10 + c
    }
    return value
  }
  let year: number
  if (field.tag === TAG_UTC_TIME) {
    const yy = digits(2)
    year = yy >= 50 ? 1900 + yy : 2000 + yy // RFC 5280 4.1.2.5.1
  } else if (field.tag === TAG_GENERALIZED_TIME) {
    year = digits(4)
  } else {
    throw new Error('validity is not a time')
  }
  const month = digits(2)
  const day = digits(2)
  const hour = digits(2)
  const minute = digits(2)
  const second = digits(2)
  if (at !== field.end - 1 || der[at] !== 0x5a) throw new Error('bad time: expected seconds then "Z"')
  return new Date(Date.UTC(year, month - 1, day, hour, minute, second))
}

// Short names of the attribute types people meet in certificates, by OID content bytes; others print dotted.
const ATTRIBUTE_NAMES: Array<[number[], string]> = [
  [[0x55, 0x04, 0x03], 'CN'], [[0x55, 0x04, 0x0a], 'O'], [[0x55, 0x04, 0x0b], 'OU'], [[0x55, 0x04, 0x06], 'C'],
  [[0x55, 0x04, 0x07], 'L'], [[0x55, 0x04, 0x08], 'ST'], [[0x55, 0x04, 0x05], 'serialNumber'], [[0x55, 0x04, 0x04], 'SN'],
  [[0x55, 0x04, 0x09], 'street'], [[0x55, 0x04, 0x0c], 'title'], [[0x55, 0x04, 0x2a], 'givenName'],
  [[0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x19], 'DC'],
  [[0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x01], 'UID'],
  [[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01], 'emailAddress']
]

function attributeName (der: Uint8Array, oid: Tlv): string {
  for (const [bytes, name] of ATTRIBUTE_NAMES) if (oidIs(der, oid, bytes)) return name
  return dottedOid(der, oid)
}

const STRING_TAGS = new Set([TAG_UTF8_STRING, TAG_PRINTABLE_STRING, TAG_IA5_STRING, TAG_TELETEX_STRING, TAG_BMP_STRING, TAG_UNIVERSAL_STRING])

/** Visits each attribute of a Name in order; `first` marks the first attribute of each RDN. */
function walkName (der: Uint8Array, name: NameRange, visit: (type: Tlv, value: Tlv, first: boolean) => void): void {
  for (let rdn = name.start; rdn < name.end;) {
    const set = tlv(der, rdn, name.end, TAG_SET)
    rdn = set.end
    for (let atv = set.start; atv < set.end;) {
      const attribute = tlv(der, atv, set.end, TAG_SEQUENCE)
      const type = tlv(der, attribute.start, attribute.end, TAG_OID)
      visit(type, tlv(der, type.end, attribute.end), atv === set.start)
      atv = attribute.end
    }
  }
}

// Checks every attribute of a Name (so that formatName, called later and lazily, cannot fail) and returns
// the first CN. A plain loop rather than walkName: this runs once per connection.
function scanName (der: Uint8Array, name: Tlv): string | null {
  let commonName: string | null = null
  for (let rdn = name.start; rdn < name.end;) {
    const set = tlv(der, rdn, name.end, TAG_SET)
    rdn = set.end
    for (let atv = set.start; atv < set.end;) {
      const attribute = tlv(der, atv, set.end, TAG_SEQUENCE)
      atv = attribute.end
      const type = tlv(der, attribute.start, attribute.end, TAG_OID)
      const value = tlv(der, type.end, attribute.end)
      if (!STRING_TAGS.has(value.tag)) throw new Error(`unsupported string type 0x${value.tag.toString(16)} in a name`)
      if (commonName === null && oidIs(der, type, OID_CN)) commonName = directoryString(der, value)
    }
  }
  return commonName
}

/** A Name as RFC 4514 style text, in certificate order, values escaped: `C=US, O=Acme, CN=order-service`. */
export function formatName (der: Uint8Array, name: NameRange): string {
  let out = ''
  walkName(der, name, (type, value, first) => {
    if (out !== '') out += first ? ', ' : '+'
    out += `${attributeName(der, type)}=${escapeAttributeValue(directoryString(der, value))}`
  })
  return out
}

// RFC 4514 2.4: so that a value holding ", CN=admin" cannot pass for another attribute.
function escapeAttributeValue (value: string): string {
  if (!needsEscape(value)) return value
  let out = ''
  for (let i = 0; i < value.length; i++) {
    const char = value[i] as string
    const code = value.charCodeAt(i)
    if (code < 0x20 || code === 0x7f) out += '\\' + code.toString(16).padStart(2, '0')
    else if ('"+,;<>\\'.includes(char) || (i === 0 && (char === '#' || char === ' ')) || (i === value.length - 1 && char === ' ')) out += '\\' + char
    else out += char
  }
  return out
}

function needsEscape (value: string): boolean {
  if (value.length === 0) return false
  if (value.charCodeAt(0) === 0x23 || value.charCodeAt(0) === 0x20 || value.charCodeAt(value.length - 1) === 0x20) return true
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i)
    // control characters, DEL, and " + , ; < > \
    if (c < 0x20 || c === 0x7f || c === 0x22 || c === 0x2b || c === 0x2c || c === 0x3b || c === 0x3c || c === 0x3e || c === 0x5c) return true
  }
  return false
}

function directoryString (der: Uint8Array, field: Tlv): string {
  switch (field.tag) {
    case TAG_UTF8_STRING:
      return Buffer.from(der.buffer, der.byteOffset + field.start, field.end - field.start).toString('utf8')
    case TAG_PRINTABLE_STRING:
    case TAG_IA5_STRING:
    case TAG_TELETEX_STRING:
      return latin1(der, field.start, field.end)
    case TAG_BMP_STRING:
      return Buffer.from(der.subarray(field.start, field.end)).swap16().toString('utf16le')
    case TAG_UNIVERSAL_STRING: {
      let out = ''
      for (let i = field.start; i + 3 < field.end; i += 4) {
        const point = new DataView(der.buffer, der.byteOffset + i, 4).getUint32(0)
        out += point <= 0x10ffff ? String.fromCodePoint(point) : '\ufffd'
      }
      return out
    }
    default:
      throw new Error(`unsupported string type 0x${field.tag.toString(16)}`)
  }
}

function readSan (der: Uint8Array, value: Tlv, fields: { uris: string[], dnsNames: string[], ips: string[], emails: string[], sanCount: number }): void {
  const names = tlv(der, value.start, value.end, TAG_SEQUENCE)
  for (let at = names.start; at < names.end;) {
    const name = tlv(der, at, names.end)
    at = name.end
    fields.sanCount++
    switch (name.tag) {
      case SAN_URI: fields.uris.push(latin1(der, name.start, name.end)); break
      case SAN_DNS: fields.dnsNames.push(latin1(der, name.start, name.end)); break
      case SAN_EMAIL: fields.emails.push(latin1(der, name.start, name.end)); break
      case SAN_IP: fields.ips.push(ipAddress(der, name.start, name.end)); break
      default: break // otherName, directoryName and the rest carry no identity we use
    }
  }
}

function keyUsage (der: Uint8Array, value: Tlv): number {
  const bits = tlv(der, value.start, value.end, TAG_BIT_STRING)
  // First content byte: unused bits; then the bits, most significant first (digitalSignature = bit 0).
  const first = bits.end - bits.start > 1 ? der[bits.start + 1] as number : 0
  const second = bits.end - bits.start > 2 ? der[bits.start + 2] as number : 0
  let usage = 0
  for (let bit = 0; bit < 8; bit++) if (first & (0x80 >> bit)) usage |= 1 << bit
  if (second & 0x80) usage |= KEY_USAGE.decipherOnly
  return usage
}

function basicConstraints (der: Uint8Array, value: Tlv): { isCa: boolean, pathLength: number | null } {
  const sequence = tlv(der, value.start, value.end, TAG_SEQUENCE)
  if (sequence.start === sequence.end) return { isCa: false, pathLength: null }
  let field: Tlv | null = tlv(der, sequence.start, sequence.end)
  const isCa = field.tag === TAG_BOOLEAN && der[field.start] !== 0
  if (field.tag === TAG_BOOLEAN) field = field.end < sequence.end ? tlv(der, field.end, sequence.end) : null
  return { isCa, pathLength: field?.tag === TAG_INTEGER ? smallInteger(der, field) : null }
}

function smallInteger (der: Uint8Array, field: Tlv): number {
  if (field.end - field.start > 4 || (der[field.start] as number) & 0x80) throw new Error('integer out of range')
  let value = 0
  for (let i = field.start; i < field.end; i++) value = value * 256 + (der[i] as number)
  return value
}

function extendedKeyUsages (der: Uint8Array, value: Tlv): string[] {
  const sequence = tlv(der, value.start, value.end, TAG_SEQUENCE)
  const oids: string[] = []
  for (let at = sequence.start; at < sequence.end;) {
    const oid = tlv(der, at, sequence.end, TAG_OID)
    at = oid.end
    oids.push(dottedOid(der, oid))
  }
  return oids
}

function dottedOid (der: Uint8Array, oid: Tlv): string {
  const parts: number[] = []
  let value = 0
  for (let i = oid.start; i < oid.end; i++) {
    const byte = der[i] as number
    value = value * 128 + (byte & 0x7f)
    if ((byte & 0x80) === 0) {
      if (parts.length === 0) parts.push(value < 80 ? Math.floor(value / 40) : 2, value < 80 ? value % 40 : value - 80)
      else parts.push(value)
      value = 0
    }
  }
  return parts.join('.')
}

function latin1 (der: Uint8Array, start: number, end: number): string {
  // Short strings (names, SANs) build faster by hand than through a Buffer view.
  if (end - start > 256) return Buffer.from(der.buffer, der.byteOffset + start, end - start).toString('latin1')
  let out = ''
  for (let i = start; i < end; i++) out += String.fromCharCode(der[i] as number)
  return out
}

/** IPv4 dotted, IPv6 in RFC 5952 form (`::1`, `2001:db8::1`). */
function ipAddress (der: Uint8Array, start: number, end: number): string {
  const length = end - start
  if (length === 4) return `${der[start]}.${der[start + 1]}.${der[start + 2]}.${der[start + 3]}`
  if (length !== 16) throw new Error(`IP address SAN of ${length} bytes`)
  const groups: number[] = []
  for (let i = 0; i < 8; i++) groups.push(((der[start + 2 * i] as number) << 8) | (der[start + 2 * i + 1] as number))
  // The longest run of two or more zero groups becomes "::" (the first such run on a tie).
  let bestStart = -1
  let bestLength = 1
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) { i++; continue }
    let j = i
    while (j < 8 && groups[j] === 0) j++
    if (j - i > bestLength) { bestStart = i; bestLength = j - i }
    i = j
  }
  const hex = groups.map(group => group.toString(16))
  if (bestStart === -1) return hex.join(':')
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`
}
