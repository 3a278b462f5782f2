// A minimal DER walker for the few certificate fields Node does not expose (typed SANs, key usage bits,
// the subject CN). It runs once per TLS connection, so it reads in place: no copies, no regular
// expressions, no full ASN.1 parse (a full @peculiar/x509 parse costs ~1 ms; this costs ~1 µs).
// Its results are checked against @peculiar/x509, the parser of record, in the tests.
import { CertificateError } from './errors.js'

const TAG_BOOLEAN = 0x01
const TAG_INTEGER = 0x02
const TAG_BIT_STRING = 0x03
const TAG_OCTET_STRING = 0x04
const TAG_NULL = 0x05
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
const OID_SUBJECT_KEY_IDENTIFIER = [0x55, 0x1d, 0x0e]
const OID_AUTHORITY_KEY_IDENTIFIER = [0x55, 0x1d, 0x23]
const OID_CRL_DISTRIBUTION_POINTS = [0x55, 0x1d, 0x1f]
const OID_ISSUING_DISTRIBUTION_POINT = [0x55, 0x1d, 0x1c]
const OID_DELTA_CRL_INDICATOR = [0x55, 0x1d, 0x1b]
const OID_CERTIFICATE_ISSUER = [0x55, 0x1d, 0x1d]
const OID_RSA_ENCRYPTION = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01]
const OID_EC_PUBLIC_KEY = [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01]
// Extensions OpenSSL evaluates in a chain and ChainVerifier does not (name constraints are reported on their own).
const EVALUATED_ELSEWHERE: Array<[number[], string]> = [
  [[0x60, 0x86, 0x48, 0x01, 0x86, 0xf8, 0x42, 0x01, 0x01], 'nsCertType'],
  [[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x01, 0x0e], 'proxyCertInfo'],
  [[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x01, 0x07], 'RFC 3779 IP address blocks'],
  [[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x01, 0x08], 'RFC 3779 AS identifiers'],
  [[0x55, 0x1d, 0x24], 'policy constraints'],
  [[0x55, 0x1d, 0x21], 'policy mappings'],
  [[0x55, 0x1d, 0x36], 'inhibit anyPolicy']
]
const NONE: readonly string[] = Object.freeze([])
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
  /** The version field as written: 0 for v1 (also when left out), 2 for v3. */
  readonly version: number
  /** The AlgorithmIdentifier inside TBSCertificate, the whole element, to compare with the outer one byte for byte. */
  readonly innerAlgorithm: ByteRange
  /** The SubjectPublicKeyInfo, the whole element. */
  readonly publicKey: ByteRange
  /** The public key's algorithm, dotted (`1.2.840.10045.2.1` for EC, `1.2.840.113549.1.1.1` for RSA, ...). */
  readonly keyAlgorithm: string
  /**
   * The key's parameters: for EC the named curve (dotted) or `'explicit'`; otherwise `'absent'`, `'null'` or
   * `'other'`.
   */
  readonly keyParameters: string
  /** An RSA key's modulus length in bits; `null` for other keys. */
  readonly rsaModulusBits: number | null
  /** The subjectPublicKey BIT STRING's contents after its unused-bits byte (an EC point, an EdDSA key, an RSAPublicKey). */
  readonly publicKeyBits: ByteRange
  /** The basic constraints extension is present, and marked critical. */
  readonly basicConstraints: boolean
  readonly basicConstraintsCritical: boolean
  /** The subject alternative name extension is present (with `sanCount` names), and marked critical. */
  readonly subjectAltName: boolean
  readonly subjectAltNameCritical: boolean
  /** The subject key identifier, hex; `null` when absent. */
  readonly subjectKeyIdentifier: string | null
  /** The authority key identifier extension; `null` when absent. */
  readonly authorityKeyIdentifier: AuthorityKeyIdentifier | null
  /** The CRL distribution points; `null` when the extension is absent. */
  readonly crlDistributionPoints: readonly DistributionPoint[] | null
  /** Extensions present that OpenSSL evaluates and ChainVerifier does not (`nsCertType`, `proxyCertInfo`, ...). */
  readonly evaluatedElsewhere: readonly string[]
}

/** Where an element lies in the DER: `start` is its first byte (the tag, for whole elements), `end` one past its last. */
export interface ByteRange {
  readonly start: number
  readonly end: number
}

/** RFC 5280 4.2.1.1, as found in certificates and CRLs. */
export interface AuthorityKeyIdentifier {
  /** Hex, `null` when absent. */
  readonly keyIdentifier: string | null
  /** The directoryName of authorityCertIssuer (a Name's contents, as NameRange); `null` when absent. */
  readonly issuer: NameRange | null
  /** authorityCertIssuer has a name other than one directoryName. */
  readonly otherIssuerNames: boolean
  /** authorityCertSerialNumber, uppercase hex as `serialNumber`; `null` when absent. */
  readonly serialNumber: string | null
}

/** A DistributionPoint (RFC 5280 4.2.1.13), or an IssuingDistributionPoint's name part. */
export interface DistributionPoint {
  /** The fullName GeneralNames, each whole element; `null` when the name is absent or relative. */
  readonly fullName: readonly ByteRange[] | null
  /** The name is nameRelativeToCRLIssuer. */
  readonly relativeName: boolean
  /** The reasons field is present. */
  readonly reasons: boolean
  /** The cRLIssuer field is present. */
  readonly crlIssuer: boolean
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
  let version = 0
  if (field.tag === TAG_VERSION) {
    version = smallInteger(der, tlv(der, field.start, field.end, TAG_INTEGER))
    if (version > 2) throw new Error(`version ${version + 1}`)
    field = tlv(der, field.end, tbs.end)
  }
  expect(field, TAG_INTEGER)
  const serialNumber = serialHex(der, field)
  const signatureHeader = field.end
  const signature = tlv(der, field.end, tbs.end, TAG_SEQUENCE)
  const issuer = tlv(der, signature.end, tbs.end, TAG_SEQUENCE)
  const validity = tlv(der, issuer.end, tbs.end, TAG_SEQUENCE)
  const notBeforeTlv = tlv(der, validity.start, validity.end)
  const notAfterTlv = tlv(der, notBeforeTlv.end, validity.end)
  const subject = tlv(der, validity.end, tbs.end, TAG_SEQUENCE)
  const spkiHeader = subject.end
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
    nameConstraints: false,
    version,
    innerAlgorithm: { start: signatureHeader, end: signature.end },
    publicKey: { start: spkiHeader, end: spki.end },
    ...publicKeyInfo(der, spki),
    basicConstraints: false,
    basicConstraintsCritical: false,
    subjectAltName: false,
    subjectAltNameCritical: false,
    subjectKeyIdentifier: null as string | null,
    authorityKeyIdentifier: null as AuthorityKeyIdentifier | null,
    crlDistributionPoints: null as DistributionPoint[] | null,
    evaluatedElsewhere: NONE
  }

  // Then issuerUniqueID [1], subjectUniqueID [2], extensions [3], each at most once and in that order.
  let last = 0
  for (at = spki.end; at < tbs.end;) {
    field = tlv(der, at, tbs.end)
    at = field.end
    const number = field.tag === TAG_ISSUER_UID ? 1 : field.tag === TAG_SUBJECT_UID ? 2 : field.tag === TAG_EXTENSIONS ? 3 : 0
    if (number <= last) throw new Error(`unexpected tag 0x${field.tag.toString(16)} in TBSCertificate`)
    last = number
    if (number !== 3) continue
    const extensions = tlv(der, field.start, field.end, TAG_SEQUENCE)
    if (extensions.end !== field.end) throw new Error('bytes after the extensions')
    // RFC 5280 4.2: an extension appears once (walkExtensions refuses a second): a second basicConstraints would let
    // CA:TRUE read as CA:FALSE.
    walkExtensions(der, extensions, (oid, critical, value) => {
      if (critical && !SUPPORTED_CRITICAL.some(known => oidIs(der, oid, known))) fields.unhandledCritical = true
      if (oidIs(der, oid, OID_NAME_CONSTRAINTS)) fields.nameConstraints = true
      if (oidIs(der, oid, OID_SAN)) {
        readSan(der, value, fields)
        fields.subjectAltName = true
        fields.subjectAltNameCritical = critical
      } else if (oidIs(der, oid, OID_KEY_USAGE)) fields.keyUsage = keyUsage(der, value)
      else if (oidIs(der, oid, OID_BASIC_CONSTRAINTS)) {
        Object.assign(fields, basicConstraints(der, value))
        fields.basicConstraints = true
        fields.basicConstraintsCritical = critical
      } else if (oidIs(der, oid, OID_EXT_KEY_USAGE)) fields.extendedKeyUsages = extendedKeyUsages(der, value)
      else if (oidIs(der, oid, OID_SUBJECT_KEY_IDENTIFIER)) fields.subjectKeyIdentifier = hex(der, sole(der, value, TAG_OCTET_STRING))
      else if (oidIs(der, oid, OID_AUTHORITY_KEY_IDENTIFIER)) fields.authorityKeyIdentifier = authorityKeyIdentifier(der, value)
      else if (oidIs(der, oid, OID_CRL_DISTRIBUTION_POINTS)) fields.crlDistributionPoints = crlDistributionPoints(der, value)
      else {
        const elsewhere = EVALUATED_ELSEWHERE.find(([known]) => oidIs(der, oid, known))
        if (elsewhere !== undefined) fields.evaluatedElsewhere = [...fields.evaluatedElsewhere, elsewhere[1]]
      }
    })
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
  /** The version field as written: 1 for v2, 0 when left out (v1). */
  readonly version: number
  /** The AlgorithmIdentifier inside TBSCertList, the whole element. */
  readonly innerAlgorithm: ByteRange
  readonly authorityKeyIdentifier: AuthorityKeyIdentifier | null
  /** The issuing distribution point (the CRL's scope); `null` when absent. */
  readonly issuingDistributionPoint: IssuingDistributionPoint | null
  /** A delta CRL (RFC 5280 5.2.4). */
  readonly deltaCrlIndicator: boolean
  /**
   * A critical extension OpenSSL does not handle (it handles the issuing distribution point, the authority key
   * identifier and the delta CRL indicator), on the CRL or on an entry (where certificateIssuer is handled).
   */
  readonly unhandledCritical: boolean
}

/** RFC 5280 5.2.5. */
export interface IssuingDistributionPoint extends Pick<DistributionPoint, 'fullName' | 'relativeName'> {
  readonly onlyUserCerts: boolean
  readonly onlyCaCerts: boolean
  readonly onlyAttributeCerts: boolean
  readonly onlySomeReasons: boolean
  readonly indirectCrl: boolean
}

/** The part of a certificate or CRL its issuer signed, the signature algorithm (dotted OID) and the signature. */
export interface SignedParts {
  readonly signed: Uint8Array
  readonly signatureAlgorithm: string
  readonly signature: Uint8Array
  /** The outer AlgorithmIdentifier, the whole element. */
  readonly algorithmIdentifier: Uint8Array
  /** The signature BIT STRING's count of unused bits (a signature has none). */
  readonly unusedBits: number
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
  // Nothing after the signature: bytes there are signed by no one, and make another encoding of the same certificate.
  if (signature.end !== outer.end) throw new Error('bytes after the signature')
  if (signature.end === signature.start) throw new Error('an empty signature')
  return {
    tbs,
    signed: der.subarray(outer.start, tbs.end),
    signatureAlgorithm: dottedOid(der, tlv(der, algorithm.start, algorithm.end, TAG_OID)),
    // A BIT STRING's first content byte counts unused bits; a signature has none.
    signature: der.subarray(signature.start + 1, signature.end),
    algorithmIdentifier: der.subarray(tbs.end, algorithm.end),
    unusedBits: der[signature.start] as number
  }
}

/** Reads a DER CRL (RFC 5280 5.1); throws CertificateError (`ERR_MTLS_CERTIFICATE_MALFORMED`) when it is not one. */
export function readCrlFields (der: Uint8Array): CrlFields {
  try {
    const parts = signedParts(der)
    const { tbs } = parts
    let algorithmAt = tbs.start
    let field = tlv(der, algorithmAt, tbs.end)
    let version = 0
    if (field.tag === TAG_INTEGER) {
      version = smallInteger(der, field)
      algorithmAt = field.end
      field = tlv(der, algorithmAt, tbs.end)
    }
    expect(field, TAG_SEQUENCE) // the signature algorithm, repeated
    const innerAlgorithm = { start: algorithmAt, end: field.end }
    const issuer = tlv(der, field.end, tbs.end, TAG_SEQUENCE)
    scanName(der, issuer)
    const thisUpdate = tlv(der, issuer.end, tbs.end)
    let nextUpdate: Date | null = null
    const revoked = new Set<string>()
    let unhandledCritical = false
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
        at = field.end
        for (let entry = field.start; entry < field.end;) {
          const revokedEntry = tlv(der, entry, field.end, TAG_SEQUENCE)
          entry = revokedEntry.end
          const serial = tlv(der, revokedEntry.start, revokedEntry.end, TAG_INTEGER)
          revoked.add(serialHex(der, serial))
          const date = tlv(der, serial.end, revokedEntry.end)
          time(der, date)
          if (date.end < revokedEntry.end) {
            const entryExtensions = tlv(der, date.end, revokedEntry.end, TAG_SEQUENCE)
            if (entryExtensions.end !== revokedEntry.end) throw new Error('bytes after a CRL entry')
            walkExtensions(der, entryExtensions, (oid, critical) => {
              // certificateIssuer is the one critical entry extension OpenSSL handles.
              if (critical && !oidIs(der, oid, OID_CERTIFICATE_ISSUER)) unhandledCritical = true
            })
          }
        }
      }
    }
    let authorityKeyId: AuthorityKeyIdentifier | null = null
    let issuingDistributionPoint: IssuingDistributionPoint | null = null
    let deltaCrlIndicator = false
    if (at < tbs.end) {
      const wrapper = tlv(der, at, tbs.end, 0xa0)
      at = wrapper.end
      const extensions = tlv(der, wrapper.start, wrapper.end, TAG_SEQUENCE)
      if (extensions.end !== wrapper.end) throw new Error('bytes after the CRL extensions')
      walkExtensions(der, extensions, (oid, critical, value) => {
        if (oidIs(der, oid, OID_AUTHORITY_KEY_IDENTIFIER)) authorityKeyId = authorityKeyIdentifier(der, value)
        else if (oidIs(der, oid, OID_ISSUING_DISTRIBUTION_POINT)) issuingDistributionPoint = issuingDistributionPointOf(der, value)
        else if (oidIs(der, oid, OID_DELTA_CRL_INDICATOR)) deltaCrlIndicator = true
        else if (critical) unhandledCritical = true
      })
    }
    if (at !== tbs.end) throw new Error('unexpected fields in TBSCertList')
    return {
      issuer: { start: issuer.start, end: issuer.end },
      thisUpdate: time(der, thisUpdate),
      nextUpdate,
      revoked,
      version,
      innerAlgorithm,
      authorityKeyIdentifier: authorityKeyId,
      issuingDistributionPoint,
      deltaCrlIndicator,
      unhandledCritical,
      signed: parts.signed,
      signatureAlgorithm: parts.signatureAlgorithm,
      signature: parts.signature,
      algorithmIdentifier: parts.algorithmIdentifier,
      unusedBits: parts.unusedBits
    }
  } catch (err) {
    throw new CertificateError('ERR_MTLS_CERTIFICATE_MALFORMED', `not a DER X.509 CRL (${(err as Error).message})`, { cause: err })
  }
}

// Calls `visit` for each Extension of an Extensions SEQUENCE; refuses one that appears twice (RFC 5280 4.2).
function walkExtensions (der: Uint8Array, extensions: Tlv, visit: (oid: Tlv, critical: boolean, value: Tlv) => void): void {
  const seen: Tlv[] = []
  for (let at = extensions.start; at < extensions.end;) {
    const extension = tlv(der, at, extensions.end, TAG_SEQUENCE)
    at = extension.end
    const oid = tlv(der, extension.start, extension.end, TAG_OID)
    if (seen.some(other => sameBytes(der, other, oid))) throw new Error(`extension ${dottedOid(der, oid)} appears twice`)
    seen.push(oid)
    let value = tlv(der, oid.end, extension.end)
    let critical = false
    if (value.tag === TAG_BOOLEAN) {
      critical = der[value.start] !== 0
      value = tlv(der, value.end, extension.end)
    }
    expect(value, TAG_OCTET_STRING)
    if (value.end !== extension.end) throw new Error('bytes after an extension value')
    visit(oid, critical, value)
  }
}

// IssuingDistributionPoint ::= SEQUENCE { [0] DistributionPointName OPTIONAL, [1] BOOLEAN onlyContainsUserCerts, [2] BOOLEAN
// onlyContainsCACerts, [3] ReasonFlags onlySomeReasons OPTIONAL, [4] BOOLEAN indirectCRL, [5] BOOLEAN onlyContainsAttributeCerts }
function issuingDistributionPointOf (der: Uint8Array, value: Tlv): IssuingDistributionPoint {
  const sequence = sole(der, value, TAG_SEQUENCE)
  let name: Pick<DistributionPoint, 'fullName' | 'relativeName'> = { fullName: null, relativeName: false }
  const flags = [false, false, false, false, false, false]
  numberedFields(der, sequence, 5, 'issuing distribution point', (field, number) => {
    if (field.tag === 0xa0) name = distributionPointName(der, field)
    else if (field.tag === 0x83) flags[3] = true
    else if (field.tag === (0x80 | number) && number !== 0) {
      if (field.end - field.start !== 1) throw new Error('a boolean of other than one byte')
      flags[number] = der[field.start] !== 0
    } else throw new Error(`unexpected tag 0x${field.tag.toString(16)} in an issuing distribution point`)
  })
  return { ...name, onlyUserCerts: flags[1] as boolean, onlyCaCerts: flags[2] as boolean, onlySomeReasons: flags[3] as boolean, indirectCrl: flags[4] as boolean, onlyAttributeCerts: flags[5] as boolean }
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
  // As OpenSSL checks (ERROR_IN_CERT_NOT_AFTER_FIELD): Date.UTC would turn February 30 into March 2.
  const daysInMonth = new Date(Date.UTC(2000, month, 0)).getUTCDate() - (month === 2 && !leapYear(year) ? 1 : 0)
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth || hour > 23 || minute > 59 || second > 59) throw new Error('bad time: out of range')
  const date = new Date(Date.UTC(2000, month - 1, day, hour, minute, second))
  date.setUTCFullYear(year)
  return date
}

function leapYear (year: number): boolean {
  return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0
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

/**
 * Throws unless `der` is one element of strict DER, as RFC 5280 asks of certificates and CRLs, where OpenSSL's
 * decoder also takes BER: definite lengths in their shortest form, low tag numbers, constructed elements filled
 * exactly by their elements, BOOLEANs of 00 or FF, minimal INTEGERs, BIT STRINGs whose unused bits are zero,
 * empty NULLs, well-formed OIDs, strings valid for their type (UTF8String, BMPString, UniversalString); the same
 * inside every extension value and RSA public key. Each encoding of a certificate it lets through is the one DER
 * encoding of its contents (a signature aside).
 */
export function checkStrictDer (der: Uint8Array): void {
  if (strictElement(der, 0, der.length, 0) !== der.length) throw new Error('bytes after the element')
}

const utf8 = new TextDecoder('utf-8', { fatal: true })
const OID_RSA_ENCRYPTION_ELEMENT = [TAG_OID, OID_RSA_ENCRYPTION.length, ...OID_RSA_ENCRYPTION]

// Checks the element at `at` and returns where it ends.
function strictElement (der: Uint8Array, at: number, limit: number, depth: number): number {
  if (depth > 32) throw new Error('nested too deep')
  if (at + 2 > limit) throw new Error('truncated')
  const tag = der[at] as number
  if ((tag & 0x1f) === 0x1f) throw new Error('a high tag number')
  let length = der[at + 1] as number
  let start = at + 2
  if ((length & 0x80) !== 0) {
    const count = length & 0x7f
    if (count === 0 || count > 4 || start + count > limit) throw new Error('bad length')
    if (der[start] === 0) throw new Error('a length with leading zeros')
    length = 0
    for (let i = 0; i < count; i++) length = length * 256 + (der[start + i] as number)
    if (length < 0x80) throw new Error('a long-form length under 128')
    start += count
  }
  const end = start + length
  if (end > limit) throw new Error('truncated')
  if ((tag & 0x20) !== 0) {
    if ((tag & 0xc0) === 0 && tag !== TAG_SEQUENCE && tag !== TAG_SET) throw new Error(`a constructed universal tag 0x${tag.toString(16)}`)
    const children: Tlv[] = []
    for (let child = start; child < end;) {
      const childEnd = strictElement(der, child, end, depth + 1)
      children.push({ tag: der[child] as number, start: child, end: childEnd })
      child = childEnd
    }
    if (tag === TAG_SEQUENCE) strictContents(der, children, depth)
    return end
  }
  const contents = end - start
  switch (tag) {
    case TAG_BOOLEAN:
      if (contents !== 1 || (der[start] !== 0 && der[start] !== 0xff)) throw new Error('a BOOLEAN other than 00 or FF')
      break
    case TAG_INTEGER:
    case 0x0a: // ENUMERATED
      if (contents === 0) throw new Error('an empty INTEGER')
      if (contents > 1 && ((der[start] === 0 && ((der[start + 1] as number) & 0x80) === 0) || (der[start] === 0xff && ((der[start + 1] as number) & 0x80) !== 0))) throw new Error('an INTEGER not in its shortest form')
      break
    case TAG_BIT_STRING: {
      const unused = der[start] as number
      if (contents === 0 || unused > 7 || (contents === 1 && unused !== 0)) throw new Error('a malformed BIT STRING')
      if (unused !== 0 && ((der[end - 1] as number) & ((1 << unused) - 1)) !== 0) throw new Error('a BIT STRING with unused bits set')
      break
    }
    case TAG_NULL:
      if (contents !== 0) throw new Error('a NULL with contents')
      break
    case TAG_OID:
      if (contents === 0 || ((der[end - 1] as number) & 0x80) !== 0) throw new Error('a malformed OID')
      for (let i = start; i < end; i++) if (der[i] === 0x80 && (i === start || ((der[i - 1] as number) & 0x80) === 0)) throw new Error('an OID arc with a leading zero')
      break
    case TAG_UTF8_STRING:
      utf8.decode(der.subarray(start, end))
      break
    case TAG_BMP_STRING:
      if (contents % 2 !== 0) throw new Error('a BMPString of odd length')
      break
    case TAG_UNIVERSAL_STRING:
      if (contents % 4 !== 0) throw new Error('a UniversalString not of 4-byte characters')
      for (let i = start; i < end; i += 4) if (new DataView(der.buffer, der.byteOffset + i, 4).getUint32(0) > 0x10ffff) throw new Error('a UniversalString beyond Unicode')
      break
    default:
      break
  }
  return end
}

// What a SEQUENCE holds in encoded form: an Extension's value, an RSA key in a SubjectPublicKeyInfo.
function strictContents (der: Uint8Array, children: readonly Tlv[], depth: number): void {
  const last = children[children.length - 1]
  const extension = children.length >= 2 && children.length <= 3 && children[0]?.tag === TAG_OID && last?.tag === TAG_OCTET_STRING && (children.length === 2 || children[1]?.tag === TAG_BOOLEAN)
  if (extension) {
    const value = tlv(der, last.start, last.end)
    if (strictElement(der, value.start, value.end, depth + 1) !== value.end) throw new Error('bytes after an extension value')
    return
  }
  const algorithm = children[0]
  if (children.length === 2 && algorithm?.tag === TAG_SEQUENCE && last?.tag === TAG_BIT_STRING && OID_RSA_ENCRYPTION_ELEMENT.every((byte, i) => der[tlv(der, algorithm.start, algorithm.end).start + i] === byte)) {
    const key = tlv(der, last.start, last.end)
    if (strictElement(der, key.start + 1, key.end, depth + 1) !== key.end) throw new Error('bytes after an RSA key')
  }
}

/**
 * A Name's key for comparison as OpenSSL compares names (X509_NAME_cmp on its canonical encoding): string values
 * with leading and trailing white space dropped, inner runs of white space made one space, ASCII lower-cased, the
 * string type forgotten; attributes of a multi-valued RDN in any order.
 */
export function canonicalName (der: Uint8Array, name: NameRange): string {
  const rdns: string[] = []
  let attributes: string[] = []
  walkName(der, name, (type, value, first) => {
    if (first && attributes.length > 0) {
      rdns.push(attributes.sort().join('+'))
      attributes = []
    }
    // Every value is a string (scanName refuses a Name with any other when it is read).
    const text = canonicalString(directoryString(der, value))
    attributes.push(`${hex(der, type)}=${text.length}:${text}`)
  })
  if (attributes.length > 0) rdns.push(attributes.sort().join('+'))
  return rdns.join(',')
}

// OpenSSL's asn1_string_canon: its white space is space, \t, \n, \v, \f and \r; only ASCII letters change case.
function canonicalString (value: string): string {
  return value.replace(/^[ \t\n\v\f\r]+|[ \t\n\v\f\r]+$/g, '').replace(/[ \t\n\v\f\r]+/g, ' ').replace(/[A-Z]+/g, letters => letters.toLowerCase())
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
  const names = sole(der, value, TAG_SEQUENCE)
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

function publicKeyInfo (der: Uint8Array, spki: Tlv): { keyAlgorithm: string, keyParameters: string, rsaModulusBits: number | null, publicKeyBits: ByteRange } {
  const algorithm = tlv(der, spki.start, spki.end, TAG_SEQUENCE)
  const key = tlv(der, algorithm.end, spki.end, TAG_BIT_STRING)
  if (key.end !== spki.end) throw new Error('bytes after the public key')
  if (key.end - key.start < 1 || der[key.start] !== 0) throw new Error('a public key with unused bits')
  const oid = tlv(der, algorithm.start, algorithm.end, TAG_OID)
  let keyParameters = 'absent'
  if (oid.end < algorithm.end) {
    const parameters = tlv(der, oid.end, algorithm.end)
    if (parameters.end !== algorithm.end) throw new Error('bytes after the key parameters')
    if (parameters.tag === TAG_NULL && parameters.start === parameters.end) keyParameters = 'null'
    else if (parameters.tag === TAG_OID && oidIs(der, oid, OID_EC_PUBLIC_KEY)) keyParameters = dottedOid(der, parameters)
    else if (parameters.tag === TAG_SEQUENCE && oidIs(der, oid, OID_EC_PUBLIC_KEY)) keyParameters = 'explicit'
    else keyParameters = 'other'
  }
  let rsaModulusBits: number | null = null
  if (oidIs(der, oid, OID_RSA_ENCRYPTION)) {
    // RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }, inside the BIT STRING.
    const rsaKey = tlv(der, key.start + 1, key.end, TAG_SEQUENCE)
    if (rsaKey.end !== key.end) throw new Error('bytes after the RSA key')
    const modulus = tlv(der, rsaKey.start, rsaKey.end, TAG_INTEGER)
    const exponent = tlv(der, modulus.end, rsaKey.end, TAG_INTEGER)
    if (exponent.end !== rsaKey.end) throw new Error('bytes after the RSA exponent')
    if (((der[modulus.start] as number) & 0x80) !== 0 || ((der[exponent.start] as number) & 0x80) !== 0) throw new Error('a negative RSA key')
    let start = modulus.start
    while (start < modulus.end && der[start] === 0) start++
    rsaModulusBits = start === modulus.end ? 0 : (modulus.end - start - 1) * 8 + (32 - Math.clz32(der[start] as number))
  }
  return { keyAlgorithm: dottedOid(der, oid), keyParameters, rsaModulusBits, publicKeyBits: { start: key.start + 1, end: key.end } }
}

// The one element, of `tag`, that fills `value` (an extension's OCTET STRING).
function sole (der: Uint8Array, value: Tlv, tag: number): Tlv {
  const field = tlv(der, value.start, value.end, tag)
  if (field.end !== value.end) throw new Error('bytes after an extension value')
  return field
}

function hex (der: Uint8Array, field: Tlv): string {
  return Buffer.from(der.buffer, der.byteOffset + field.start, field.end - field.start).toString('hex').toUpperCase()
}

// The [n]-tagged fields of a SEQUENCE whose fields are numbered 0 to `max`, each once and in order, to `visit`.
function numberedFields (der: Uint8Array, sequence: Tlv, max: number, what: string, visit: (field: Tlv, number: number) => void): void {
  let last = -1
  for (let at = sequence.start; at < sequence.end;) {
    const field = tlv(der, at, sequence.end)
    at = field.end
    const number = field.tag & 0x1f
    if (number <= last || number > max) throw new Error(`${what} fields out of order`)
    last = number
    visit(field, number)
  }
}

// AuthorityKeyIdentifier ::= SEQUENCE { [0] KeyIdentifier OPTIONAL, [1] GeneralNames OPTIONAL, [2] CertificateSerialNumber OPTIONAL }
function authorityKeyIdentifier (der: Uint8Array, value: Tlv): AuthorityKeyIdentifier {
  const sequence = sole(der, value, TAG_SEQUENCE)
  let keyIdentifier: string | null = null
  let issuer: NameRange | null = null
  let otherIssuerNames = false
  let serialNumber: string | null = null
  numberedFields(der, sequence, 2, 'authority key identifier', field => {
    if (field.tag === 0x80) keyIdentifier = hex(der, field)
    else if (field.tag === 0xa1) {
      for (let name = field.start; name < field.end;) {
        const general = tlv(der, name, field.end)
        name = general.end
        if (general.tag === 0xa4 && issuer === null) {
          const directoryName = tlv(der, general.start, general.end, TAG_SEQUENCE)
          if (directoryName.end !== general.end) throw new Error('bytes after a directoryName')
          scanName(der, directoryName)
          issuer = { start: directoryName.start, end: directoryName.end }
        } else otherIssuerNames = true
      }
    } else if (field.tag === 0x82) {
      if (field.start === field.end) throw new Error('an empty serial number')
      serialNumber = serialHex(der, field)
    } else throw new Error(`unexpected tag 0x${field.tag.toString(16)} in an authority key identifier`)
  })
  return { keyIdentifier, issuer, otherIssuerNames, serialNumber }
}

// DistributionPointName ::= CHOICE { fullName [0] GeneralNames, nameRelativeToCRLIssuer [1] RelativeDistinguishedName }
function distributionPointName (der: Uint8Array, field: Tlv): Pick<DistributionPoint, 'fullName' | 'relativeName'> {
  const choice = tlv(der, field.start, field.end)
  if (choice.end !== field.end) throw new Error('bytes after a distribution point name')
  if (choice.tag === 0xa1) return { fullName: null, relativeName: true }
  if (choice.tag !== 0xa0) throw new Error(`unexpected tag 0x${choice.tag.toString(16)} in a distribution point name`)
  const names: ByteRange[] = []
  for (let at = choice.start; at < choice.end;) {
    const name = tlv(der, at, choice.end)
    // A directoryName is compared as a Name: read it now, so that comparing it later cannot fail.
    if (name.tag === 0xa4) {
      const directoryName = tlv(der, name.start, name.end, TAG_SEQUENCE)
      if (directoryName.end !== name.end) throw new Error('bytes after a directoryName')
      scanName(der, directoryName)
    }
    names.push({ start: at, end: name.end })
    at = name.end
  }
  if (names.length === 0) throw new Error('an empty distribution point name')
  return { fullName: names, relativeName: false }
}

// CRLDistributionPoints ::= SEQUENCE OF SEQUENCE { [0] DistributionPointName OPTIONAL, [1] ReasonFlags OPTIONAL, [2] GeneralNames OPTIONAL }
function crlDistributionPoints (der: Uint8Array, value: Tlv): DistributionPoint[] {
  const sequence = sole(der, value, TAG_SEQUENCE)
  const points: DistributionPoint[] = []
  for (let at = sequence.start; at < sequence.end;) {
    const point = tlv(der, at, sequence.end, TAG_SEQUENCE)
    at = point.end
    let name: Pick<DistributionPoint, 'fullName' | 'relativeName'> = { fullName: null, relativeName: false }
    let reasons = false
    let crlIssuer = false
    if (point.start === point.end) throw new Error('an empty distribution point')
    numberedFields(der, point, 2, 'distribution point', field => {
      if (field.tag === 0xa0) name = distributionPointName(der, field)
      else if (field.tag === 0x81) reasons = true
      else if (field.tag === 0xa2) crlIssuer = true
      else throw new Error(`unexpected tag 0x${field.tag.toString(16)} in a distribution point`)
    })
    points.push({ ...name, reasons, crlIssuer })
  }
  if (points.length === 0) throw new Error('no distribution point')
  return points
}

function keyUsage (der: Uint8Array, value: Tlv): number {
  const bits = sole(der, value, TAG_BIT_STRING)
  if (bits.start === bits.end || (der[bits.start] as number) > 7) throw new Error('malformed key usage')
  // First content byte: unused bits; then the bits, most significant first (digitalSignature = bit 0).
  const first = bits.end - bits.start > 1 ? der[bits.start + 1] as number : 0
  const second = bits.end - bits.start > 2 ? der[bits.start + 2] as number : 0
  let usage = 0
  for (let bit = 0; bit < 8; bit++) if (first & (0x80 >> bit)) usage |= 1 << bit
  if (second & 0x80) usage |= KEY_USAGE.decipherOnly
  return usage
}

function basicConstraints (der: Uint8Array, value: Tlv): { isCa: boolean, pathLength: number | null } {
  const sequence = sole(der, value, TAG_SEQUENCE)
  if (sequence.start === sequence.end) return { isCa: false, pathLength: null }
  let field: Tlv | null = tlv(der, sequence.start, sequence.end)
  const isCa = field.tag === TAG_BOOLEAN && der[field.start] !== 0
  if (field.tag === TAG_BOOLEAN) field = field.end < sequence.end ? tlv(der, field.end, sequence.end) : null
  if (field !== null && (field.tag !== TAG_INTEGER || field.end !== sequence.end)) throw new Error('malformed basic constraints')
  return { isCa, pathLength: field === null ? null : smallInteger(der, field) }
}

function smallInteger (der: Uint8Array, field: Tlv): number {
  if (field.end - field.start > 4 || (der[field.start] as number) & 0x80) throw new Error('integer out of range')
  let value = 0
  for (let i = field.start; i < field.end; i++) value = value * 256 + (der[i] as number)
  return value
}

function extendedKeyUsages (der: Uint8Array, value: Tlv): string[] {
  const sequence = sole(der, value, TAG_SEQUENCE)
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
