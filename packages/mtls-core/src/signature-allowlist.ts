// The signature algorithms and public keys ChainVerifier accepts, and nothing else: ECDSA and RSA PKCS#1 v1.5
// with SHA-256/384/512, RSA-PSS with SHA-256/384/512 (MGF1 of the same hash, a salt of at least the hash length),
// Ed25519 and Ed448; RSA keys of 2048 to 16384 bits, EC keys on the named P-256, P-384 and P-521 curves, Ed25519
// and Ed448 keys. Algorithm identifiers are compared as whole encodings, so an identifier with unexpected
// parameters is not one of these.
import { constants, verify, type KeyObject } from 'node:crypto'
import { tlv, type CertificateFields, type SignedParts } from './der.js'

/** How a signature in an allowed algorithm is checked. */
export interface AllowedAlgorithm {
  readonly name: string
  /** The digest for node:crypto's verify; `null` for EdDSA. */
  readonly digest: string | null
  /** The key type the algorithm needs (`KeyObject#asymmetricKeyType`). */
  readonly keyType: 'ec' | 'rsa' | 'ed25519' | 'ed448'
  /** RSA-PSS's salt length; `null` for the others. */
  readonly saltLength: number | null
}

/** Why an algorithm identifier is not allowed: a digest OpenSSL itself refuses as too weak, or anything else. */
export interface RefusedAlgorithm {
  readonly refused: 'weak' | 'unsupported'
  readonly name: string
}

const bytes = (hex: string): string => Buffer.from(hex.replace(/ /g, ''), 'hex').toString('latin1')
// OID contents, hex.
const ECDSA = '2a8648ce3d04'
const PKCS1 = '2a864886f70d0101'
const HASHES: Record<string, { name: string, digest: string, length: number }> = {
  '608648016503040201': { name: 'SHA-256', digest: 'sha256', length: 32 },
  '608648016503040202': { name: 'SHA-384', digest: 'sha384', length: 48 },
  '608648016503040203': { name: 'SHA-512', digest: 'sha512', length: 64 }
}
const ID_RSASSA_PSS = '2a864886f70d01010a'
const ID_MGF1 = '2a864886f70d010108'

// Whole AlgorithmIdentifier encodings: ECDSA and EdDSA without parameters (RFC 5758, RFC 8410), PKCS#1 v1.5 with NULL (RFC 4055).
const algorithmIdentifier = (oid: string, parameters = ''): string => {
  const oidElement = `06${(oid.length / 2).toString(16).padStart(2, '0')}${oid}`
  return bytes(`30${((oidElement.length + parameters.length) / 2).toString(16).padStart(2, '0')}${oidElement}${parameters}`)
}
const ALLOWED = new Map<string, AllowedAlgorithm>([
  [algorithmIdentifier(`${ECDSA}0302`), { name: 'ECDSA with SHA-256', digest: 'sha256', keyType: 'ec', saltLength: null }],
  [algorithmIdentifier(`${ECDSA}0303`), { name: 'ECDSA with SHA-384', digest: 'sha384', keyType: 'ec', saltLength: null }],
  [algorithmIdentifier(`${ECDSA}0304`), { name: 'ECDSA with SHA-512', digest: 'sha512', keyType: 'ec', saltLength: null }],
  [algorithmIdentifier(`${PKCS1}0b`, '0500'), { name: 'RSA PKCS#1 v1.5 with SHA-256', digest: 'sha256', keyType: 'rsa', saltLength: null }],
  [algorithmIdentifier(`${PKCS1}0c`, '0500'), { name: 'RSA PKCS#1 v1.5 with SHA-384', digest: 'sha384', keyType: 'rsa', saltLength: null }],
  [algorithmIdentifier(`${PKCS1}0d`, '0500'), { name: 'RSA PKCS#1 v1.5 with SHA-512', digest: 'sha512', keyType: 'rsa', saltLength: null }],
  [algorithmIdentifier('2b6570'), { name: 'Ed25519', digest: null, keyType: 'ed25519', saltLength: null }],
  [algorithmIdentifier('2b6571'), { name: 'Ed448', digest: null, keyType: 'ed448', saltLength: null }]
])

// Signature algorithms with MD2, MD4, MD5 or SHA-1, which OpenSSL refuses below its trust anchor (CA_MD_TOO_WEAK).
const WEAK = new Map<string, string>([
  [`${PKCS1}02`, 'md2WithRSAEncryption'], [`${PKCS1}03`, 'md4WithRSAEncryption'], [`${PKCS1}04`, 'md5WithRSAEncryption'],
  [`${PKCS1}05`, 'sha1WithRSAEncryption'], ['2b0e030203', 'md5WithRSA (OIW)'], ['2b0e03021d', 'sha1WithRSA (OIW)'],
  ['2b0e03020f', 'shaWithRSASignature (OIW)'], ['2b0e03021b', 'dsaWithSHA1 (OIW)'], ['2b0e03020d', 'dsaWithSHA (OIW)'],
  ['2a8648ce380403', 'dsa-with-sha1'], ['2a8648ce3d0401', 'ecdsa-with-SHA1']
])

/** The allowed algorithm an AlgorithmIdentifier (DER, the whole element) names, or why it is refused. */
export function signatureAlgorithm (identifier: Uint8Array): AllowedAlgorithm | RefusedAlgorithm {
  const key = Buffer.from(identifier.buffer, identifier.byteOffset, identifier.byteLength).toString('latin1')
  const allowed = ALLOWED.get(key)
  if (allowed !== undefined) return allowed
  let oid: string
  try {
    const sequence = tlv(identifier, 0, identifier.length, 0x30)
    const oidElement = tlv(identifier, sequence.start, sequence.end, 0x06)
    oid = Buffer.from(identifier.subarray(oidElement.start, oidElement.end)).toString('hex')
    if (oid === ID_RSASSA_PSS) return rsaPss(identifier, oidElement.end, sequence.end)
  } catch {
    return { refused: 'unsupported', name: 'a malformed algorithm identifier' }
  }
  const weak = WEAK.get(oid)
  if (weak !== undefined) return { refused: 'weak', name: weak }
  return { refused: 'unsupported', name: `the algorithm ${oid} with these parameters` }
}

// RSASSA-PSS-params ::= SEQUENCE { [0] hashAlgorithm, [1] maskGenAlgorithm, [2] saltLength, [3] trailerField DEFAULT 1 }.
// The hash and mask are required here (their defaults are SHA-1), the salt too (its default, 20, is shorter than the hashes allowed).
function rsaPss (der: Uint8Array, at: number, end: number): AllowedAlgorithm | RefusedAlgorithm {
  if (at === end) return { refused: 'weak', name: 'RSA-PSS with its default parameters (SHA-1)' }
  const parameters = tlv(der, at, end, 0x30)
  if (parameters.end !== end) return { refused: 'unsupported', name: 'RSA-PSS with bytes after its parameters' }
  const fields: Array<Uint8Array | undefined> = []
  let last = -1
  for (let field = parameters.start; field < parameters.end;) {
    const element = tlv(der, field, parameters.end)
    const number = element.tag - 0xa0
    if (number <= last || number > 3) return { refused: 'unsupported', name: 'RSA-PSS with malformed parameters' }
    last = number
    fields[number] = der.subarray(element.start, element.end)
    field = element.end
  }
  const [hashField, maskField, saltField, trailerField] = fields
  const hash = hashField === undefined ? undefined : hashOf(hashField)
  if (hash === undefined) return { refused: hashField === undefined || hashName(hashField) === 'sha1' ? 'weak' : 'unsupported', name: 'RSA-PSS without SHA-256, SHA-384 or SHA-512' }
  if (maskField === undefined || mgf1HashOf(maskField) !== hash) return { refused: 'unsupported', name: `RSA-PSS with ${hash.name} and another MGF1 hash` }
  const salt = saltField === undefined ? 20 : integerOf(saltField)
  if (salt === null || salt < hash.length) return { refused: 'unsupported', name: `RSA-PSS with ${hash.name} and a salt shorter than ${hash.length} bytes` }
  if (trailerField !== undefined && integerOf(trailerField) !== 1) return { refused: 'unsupported', name: 'RSA-PSS with a trailer field other than 1' }
  return { name: `RSA-PSS with ${hash.name}`, digest: hash.digest, keyType: 'rsa', saltLength: salt }
}

// An AlgorithmIdentifier of a hash: the OID, then nothing or NULL.
function hashOf (explicit: Uint8Array): { name: string, digest: string, length: number } | undefined {
  const name = hashName(explicit)
  return name === null ? undefined : HASHES[name]
}

function hashName (explicit: Uint8Array): string | null {
  try {
    const sequence = tlv(explicit, 0, explicit.length, 0x30)
    if (sequence.end !== explicit.length) return null
    const oid = tlv(explicit, sequence.start, sequence.end, 0x06)
    if (oid.end !== sequence.end && (oid.end + 2 !== sequence.end || explicit[oid.end] !== 0x05 || explicit[oid.end + 1] !== 0x00)) return null
    const hex = Buffer.from(explicit.subarray(oid.start, oid.end)).toString('hex')
    return hex === '2b0e03021a' ? 'sha1' : hex
  } catch {
    return null
  }
}

function mgf1HashOf (explicit: Uint8Array): { name: string, digest: string, length: number } | undefined {
  try {
    const sequence = tlv(explicit, 0, explicit.length, 0x30)
    const oid = tlv(explicit, sequence.start, sequence.end, 0x06)
    if (sequence.end !== explicit.length || Buffer.from(explicit.subarray(oid.start, oid.end)).toString('hex') !== ID_MGF1) return undefined
    return hashOf(explicit.subarray(oid.end, sequence.end))
  } catch {
    return undefined
  }
}

function integerOf (explicit: Uint8Array): number | null {
  try {
    const integer = tlv(explicit, 0, explicit.length, 0x02)
    if (integer.end !== explicit.length || integer.end - integer.start > 2 || ((explicit[integer.start] as number) & 0x80) !== 0) return null
    let value = 0
    for (let i = integer.start; i < integer.end; i++) value = value * 256 + (explicit[i] as number)
    return value
  } catch {
    return null
  }
}

/** Whether `parts` carry a valid signature by `key` in `algorithm`. */
export function verifiesWith (parts: SignedParts, algorithm: AllowedAlgorithm, key: KeyObject): boolean {
  if (key.asymmetricKeyType !== algorithm.keyType) return false
  try {
    if (algorithm.saltLength !== null) {
      return verify(algorithm.digest, parts.signed, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: algorithm.saltLength }, parts.signature)
    }
    return verify(algorithm.digest, parts.signed, key, parts.signature)
  } catch {
    return false
  }
}

/** Why a public key is refused: too small for OpenSSL's security levels, explicit curve parameters, or not allowed here. */
export interface KeyProblem {
  readonly problem: 'too-small' | 'explicit-parameters' | 'unsupported'
  readonly description: string
}

const RSA = '1.2.840.113549.1.1.1'
const EC = '1.2.840.10045.2.1'
// Named curves: field prime p and coefficient b (a = -3 for all three).
const CURVES: Record<string, { name: string, bytes: number, p: bigint, b: bigint }> = {
  '1.2.840.10045.3.1.7': {
    name: 'P-256',
    bytes: 32,
    p: 2n ** 256n - 2n ** 224n + 2n ** 192n + 2n ** 96n - 1n,
    b: 0x5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604bn
  },
  '1.3.132.0.34': {
    name: 'P-384',
    bytes: 48,
    p: 2n ** 384n - 2n ** 128n - 2n ** 96n + 2n ** 32n - 1n,
    b: 0xb3312fa7e23ee7e4988e056be3f82d19181d9c6efe8141120314088f5013875ac656398d8a2ed19d2a85c8edd3ec2aefn
  },
  '1.3.132.0.35': {
    name: 'P-521',
    bytes: 66,
    p: 2n ** 521n - 1n,
    b: 0x0051953eb9618e1c9a1f929a21a0b68540eea2da725b99b315f3b8b489918ef109e156193951ec7e937b1652c0bd3bb1bf073573df883d2c34f1ef451fd46b503f00n
  }
}
// Named curves under 224 bits, which OpenSSL refuses at its default security level (EE_KEY_TOO_SMALL, CA_KEY_TOO_SMALL).
const SMALL_CURVES = new Set([
  '1.3.132.0.6', '1.3.132.0.7', '1.3.132.0.28', '1.3.132.0.29', '1.3.132.0.9', '1.3.132.0.8', '1.3.132.0.30', '1.3.132.0.31',
  '1.2.840.10045.3.1.1', '1.2.840.10045.3.1.2', '1.2.840.10045.3.1.3', '1.3.36.3.3.2.8.1.1.1', '1.3.36.3.3.2.8.1.1.3'
])

/** What is wrong with a certificate's public key, or `null` for a key of the allowlist. */
export function keyProblem (der: Uint8Array, fields: CertificateFields): KeyProblem | null {
  switch (fields.keyAlgorithm) {
    case RSA: {
      const bits = fields.rsaModulusBits as number
      if (fields.keyParameters !== 'null') return { problem: 'unsupported', description: 'an RSA key whose algorithm parameters are not NULL' }
      if (bits < 2048) return { problem: 'too-small', description: `an RSA key of ${bits} bits (2048 at least)` }
      if (bits > 16384) return { problem: 'unsupported', description: `an RSA key of ${bits} bits (16384 at most)` }
      return null
    }
    case EC: {
      if (fields.keyParameters === 'explicit') return { problem: 'explicit-parameters', description: 'an EC key with explicit curve parameters' }
      const curve = CURVES[fields.keyParameters]
      if (curve === undefined) {
        return { problem: SMALL_CURVES.has(fields.keyParameters) ? 'too-small' : 'unsupported', description: `an EC key on the curve ${fields.keyParameters} (P-256, P-384 or P-521 only)` }
      }
      return onCurve(der, fields, curve) ? null : { problem: 'unsupported', description: `an EC key that is not an uncompressed point of ${curve.name}` }
    }
    case '1.3.101.112':
    case '1.3.101.113': {
      const length = fields.keyAlgorithm === '1.3.101.112' ? 32 : 57
      const key = fields.publicKeyBits
      if (fields.keyParameters !== 'absent' || key.end - key.start !== length) return { problem: 'unsupported', description: 'an EdDSA key of the wrong size or with parameters' }
      return null
    }
    default:
      return { problem: 'unsupported', description: `a public key of the algorithm ${fields.keyAlgorithm} (RSA, EC, Ed25519 and Ed448 only)` }
  }
}

// y² = x³ - 3x + b (mod p), for an uncompressed point of coordinates below p.
function onCurve (der: Uint8Array, fields: CertificateFields, curve: { bytes: number, p: bigint, b: bigint }): boolean {
  const point = fields.publicKeyBits
  if (point.end - point.start !== 1 + 2 * curve.bytes || der[point.start] !== 0x04) return false
  const coordinate = (from: number): bigint => BigInt('0x' + Buffer.from(der.subarray(from, from + curve.bytes)).toString('hex'))
  const x = coordinate(point.start + 1)
  const y = coordinate(point.start + 1 + curve.bytes)
  if (x >= curve.p || y >= curve.p) return false
  const { p } = curve
  return (y * y - (x * x * x - 3n * x + curve.b)) % p === 0n
}
