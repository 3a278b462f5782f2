// A certificate and CRL forge that writes DER by hand, so that tests can make what no well-behaved library
// makes: weak and mismatched signature algorithms, small and exotic keys, extensions OpenSSL evaluates, and
// encodings that break the rules (algorithm identifiers that disagree, unused bits in a signature, bytes after
// it). It shares no code with mtls-core, whose verifier it is used to attack. Signatures come from node:crypto.
import { constants, createHash, createPrivateKey, createPublicKey, generateKeyPairSync, privateEncrypt, randomBytes, sign, type KeyObject } from 'node:crypto'

// ---------------------------------------------------------------------------------------------------------
// DER writing

function lengthOctets (length: number): number[] {
  if (length < 0x80) return [length]
  const bytes: number[] = []
  for (let rest = length; rest > 0; rest = Math.floor(rest / 256)) bytes.unshift(rest % 256)
  return [0x80 | bytes.length, ...bytes]
}

/** One DER element: `tag`, a minimal definite length, then the contents. */
export function tlv (tag: number, ...contents: Uint8Array[]): Buffer {
  const body = Buffer.concat(contents)
  return Buffer.concat([Buffer.from([tag, ...lengthOctets(body.length)]), body])
}

export const sequence = (...items: Uint8Array[]): Buffer => tlv(0x30, ...items)
export const set = (...items: Uint8Array[]): Buffer => tlv(0x31, ...items)
export const nullValue = (): Buffer => Buffer.from([0x05, 0x00])
export const boolean = (value: boolean): Buffer => tlv(0x01, Buffer.from([value ? 0xff : 0x00]))
export const octetString = (bytes: Uint8Array): Buffer => tlv(0x04, bytes)
export const bitString = (bytes: Uint8Array, unusedBits = 0): Buffer => tlv(0x03, Buffer.from([unusedBits]), bytes)
export const utf8String = (text: string): Buffer => tlv(0x0c, Buffer.from(text, 'utf8'))
export const printableString = (text: string): Buffer => tlv(0x13, Buffer.from(text, 'latin1'))
export const ia5String = (text: string): Buffer => tlv(0x16, Buffer.from(text, 'latin1'))
/** `[n]` EXPLICIT (constructed, around `content`). */
export const explicit = (n: number, ...content: Uint8Array[]): Buffer => tlv(0xa0 | n, ...content)
/** `[n]` IMPLICIT of a primitive value: its contents under a context tag. */
export const implicitPrimitive = (n: number, contents: Uint8Array): Buffer => tlv(0x80 | n, contents)

/** An INTEGER, minimal two's complement of a non-negative value. */
export function integer (value: number | bigint | Uint8Array): Buffer {
  let bytes: Buffer
  if (value instanceof Uint8Array) {
    bytes = Buffer.from(value)
  } else {
    let hex = BigInt(value).toString(16)
    if (hex.length % 2 === 1) hex = '0' + hex
    bytes = Buffer.from(hex, 'hex')
  }
  let start = 0
  while (start < bytes.length - 1 && bytes[start] === 0 && ((bytes[start + 1] as number) & 0x80) === 0) start++
  bytes = bytes.subarray(start)
  if (((bytes[0] as number) & 0x80) !== 0) bytes = Buffer.concat([Buffer.from([0]), bytes])
  return tlv(0x02, bytes)
}

export function oid (dotted: string): Buffer {
  const arcs = dotted.split('.').map(arc => BigInt(arc))
  const values = [(arcs[0] as bigint) * 40n + (arcs[1] as bigint), ...arcs.slice(2)]
  const bytes: number[] = []
  for (const value of values) {
    const group: number[] = [Number(value & 0x7fn)]
    for (let rest = value >> 7n; rest > 0n; rest >>= 7n) group.unshift(Number(rest & 0x7fn) | 0x80)
    bytes.push(...group)
  }
  return tlv(0x06, Buffer.from(bytes))
}

const pad = (n: number, width = 2): string => String(n).padStart(width, '0')

/** UTCTime for 1950-2049 (RFC 5280 4.1.2.5), GeneralizedTime otherwise. */
export function time (date: Date): Buffer {
  const year = date.getUTCFullYear()
  const rest = `${pad(date.getUTCMonth() + 1)}${pad(date.getUTCDate())}${pad(date.getUTCHours())}${pad(date.getUTCMinutes())}${pad(date.getUTCSeconds())}Z`
  if (year >= 1950 && year < 2050) return tlv(0x17, Buffer.from(pad(year % 100) + rest, 'latin1'))
  return tlv(0x18, Buffer.from(pad(year, 4) + rest, 'latin1'))
}

/** A time element with any text: `timeText('2501010000Z')` is a UTCTime without seconds. */
export const timeText = (text: string, tag: 0x17 | 0x18 = 0x17): Buffer => tlv(tag, Buffer.from(text, 'latin1'))

const ATTRIBUTES: Record<string, string> = { CN: '2.5.4.3', O: '2.5.4.10', OU: '2.5.4.11', C: '2.5.4.6', serialNumber: '2.5.4.5' }

/** A Name of one attribute per RDN, values as UTF8String: `name(['O', 'Acme'], ['CN', 'svc'])`. */
export function name (...attributes: Array<[string, string]>): Buffer {
  return sequence(...attributes.map(([type, value]) => set(sequence(oid(ATTRIBUTES[type] ?? type), utf8String(value)))))
}

// ---------------------------------------------------------------------------------------------------------
// DER reading: just enough to take the name, key identifier and serial from a CA certificate made elsewhere.

interface Element { tag: number, start: number, end: number, headerStart: number }

function element (der: Uint8Array, at: number): Element {
  const tag = der[at] as number
  let length = der[at + 1] as number
  let start = at + 2
  if ((length & 0x80) !== 0) {
    const count = length & 0x7f
    length = 0
    for (let i = 0; i < count; i++) length = length * 256 + (der[start + i] as number)
    start += count
  }
  return { tag, start, end: start + length, headerStart: at }
}

function children (der: Uint8Array, parent: Element): Element[] {
  const out: Element[] = []
  for (let at = parent.start; at < parent.end;) {
    const child = element(der, at)
    out.push(child)
    at = child.end
  }
  return out
}

const whole = (der: Uint8Array, e: Element): Buffer => Buffer.from(der.subarray(e.headerStart, e.end))

/** What an issuer needs to know of its own certificate. */
export interface CertificateParts {
  readonly subject: Buffer
  readonly serial: Buffer
  readonly keyIdentifier: Buffer | null
}

export function certificateParts (der: Uint8Array): CertificateParts {
  const tbs = children(der, children(der, element(der, 0))[0] as Element)
  const fields = tbs[0]?.tag === 0xa0 ? tbs.slice(1) : tbs
  let keyIdentifier: Buffer | null = null
  const extensions = fields.find(field => field.tag === 0xa3)
  if (extensions !== undefined) {
    for (const extension of children(der, children(der, extensions)[0] as Element)) {
      const parts = children(der, extension)
      if (whole(der, parts[0] as Element).equals(oid('2.5.29.14'))) {
        const value = parts[parts.length - 1] as Element
        const inner = element(der, value.start)
        keyIdentifier = Buffer.from(der.subarray(inner.start, inner.end))
      }
    }
  }
  const serial = fields[0] as Element
  return { subject: whole(der, fields[4] as Element), serial: Buffer.from(der.subarray(serial.start, serial.end)), keyIdentifier }
}

// ---------------------------------------------------------------------------------------------------------
// Keys

export type KeyKind =
  | 'p256' | 'p384' | 'p521' | 'ed25519' | 'ed448'
  | 'rsa512' | 'rsa768' | 'rsa1024' | 'rsa2048' | 'rsa3072'
  | 'secp112r1' | 'p224' | 'secp256k1' | 'brainpoolP256r1' | 'p256-explicit'
  | 'dsa2048'

export interface ForgeKey {
  readonly kind: KeyKind
  readonly privateKey: KeyObject
  /** The DER SubjectPublicKeyInfo. */
  readonly spki: Buffer
  /** PKCS#8 PEM, for a TLS client. */
  readonly pem: string
}

const CURVES: Partial<Record<KeyKind, string>> = {
  p256: 'prime256v1', p384: 'secp384r1', p521: 'secp521r1', secp112r1: 'secp112r1', p224: 'secp224r1', secp256k1: 'secp256k1', brainpoolP256r1: 'brainpoolP256r1'
}

export function generateKey (kind: KeyKind): ForgeKey {
  let privateKey: KeyObject
  if (kind === 'ed25519') privateKey = generateKeyPairSync('ed25519').privateKey
  else if (kind === 'ed448') privateKey = generateKeyPairSync('ed448').privateKey
  else if (kind.startsWith('rsa')) privateKey = generateKeyPairSync('rsa', { modulusLength: Number(kind.slice(3)) }).privateKey
  else if (kind === 'dsa2048') privateKey = generateKeyPairSync('dsa', { modulusLength: 2048, divisorLength: 256 }).privateKey
  else if (kind === 'p256-explicit') {
    // Explicit curve parameters survive only through an encoding that asks for them.
    const pair = generateKeyPairSync('ec', { namedCurve: 'prime256v1', paramEncoding: 'explicit', publicKeyEncoding: { type: 'spki', format: 'der' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } })
    return { kind, privateKey: createPrivateKey(pair.privateKey), spki: pair.publicKey, pem: pair.privateKey }
  } else privateKey = generateKeyPairSync('ec', { namedCurve: CURVES[kind] as string }).privateKey
  return { kind, privateKey, spki: privateKeyToSpki(privateKey), pem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string }
}

/** Keys made ahead, handed out in turn: RSA key generation is slow, and a key may sign many certificates. */
export class KeyPool {
  readonly #keys = new Map<KeyKind, ForgeKey[]>()
  readonly #next = new Map<KeyKind, number>()

  constructor (counts: Partial<Record<KeyKind, number>>) {
    for (const [kind, count] of Object.entries(counts) as Array<[KeyKind, number]>) {
      this.#keys.set(kind, Array.from({ length: count }, () => generateKey(kind)))
    }
  }

  take (kind: KeyKind): ForgeKey {
    let keys = this.#keys.get(kind)
    if (keys === undefined) this.#keys.set(kind, keys = [generateKey(kind)])
    const index = this.#next.get(kind) ?? 0
    this.#next.set(kind, index + 1)
    return keys[index % keys.length] as ForgeKey
  }
}

/** RFC 5280 4.2.1.2 method 1: SHA-1 of the subjectPublicKey BIT STRING's bits. */
export function keyIdentifier (spki: Uint8Array): Buffer {
  const parts = children(spki, element(spki, 0))
  const bits = parts[1] as Element
  return createHash('sha1').update(spki.subarray(bits.start + 1, bits.end)).digest()
}

/** A SubjectPublicKeyInfo with another algorithm identifier around the same key bits (an RSA key labelled RSA-PSS, …). */
export function relabelledSpki (spki: Uint8Array, algorithm: Buffer): Buffer {
  const parts = children(spki, element(spki, 0))
  return sequence(algorithm, whole(spki, parts[1] as Element))
}

// ---------------------------------------------------------------------------------------------------------
// Signature algorithms

export interface SignatureAlgorithm {
  readonly name: string
  /** The AlgorithmIdentifier, DER. */
  readonly identifier: Buffer
  sign: (data: Buffer, key: KeyObject) => Buffer
}

const algorithmIdentifier = (dotted: string, parameters?: Buffer): Buffer => sequence(oid(dotted), ...(parameters === undefined ? [] : [parameters]))

function simple (name: string, dotted: string, digest: string | null, parameters?: Buffer): SignatureAlgorithm {
  return { name, identifier: algorithmIdentifier(dotted, parameters), sign: (data, key) => sign(digest, data, key) }
}

const HASHES: Record<string, string> = { sha1: '1.3.14.3.2.26', sha224: '2.16.840.1.101.3.4.2.4', sha256: '2.16.840.1.101.3.4.2.1', sha384: '2.16.840.1.101.3.4.2.2', sha512: '2.16.840.1.101.3.4.2.3' }

export interface PssOptions {
  /** MGF1's hash; default: the message hash. */
  mgf1?: string
  /** Default: the hash length. */
  saltLength?: number
  /** Written as [3] when given. */
  trailerField?: number
  /** Leave the parameters out (their defaults are SHA-1 and salt 20). */
  noParameters?: boolean
}

/** RSASSA-PSS, encoded here (EMSA-PSS) and signed with the raw RSA operation, so that any hash, MGF1 hash and salt can be declared and used. */
export function rsaPss (hash: string, options: PssOptions = {}): SignatureAlgorithm {
  const mgf1 = options.mgf1 ?? hash
  const saltLength = options.saltLength ?? createHash(hash).digest().length
  const hashId = (h: string): Buffer => algorithmIdentifier(HASHES[h] as string, nullValue())
  const parameters = options.noParameters === true
    ? undefined
    : sequence(
      explicit(0, hashId(hash)),
      explicit(1, algorithmIdentifier('1.2.840.113549.1.1.8', hashId(mgf1))),
      explicit(2, integer(saltLength)),
      ...(options.trailerField === undefined ? [] : [explicit(3, integer(options.trailerField))])
    )
  return {
    name: `rsa-pss-${hash}${mgf1 === hash ? '' : `-mgf1-${mgf1}`}-salt${saltLength}`,
    identifier: algorithmIdentifier('1.2.840.113549.1.1.10', parameters),
    sign: (data, key) => pssSign(data, key, hash, mgf1, saltLength)
  }
}

function mgf1Mask (hash: string, seed: Buffer, length: number): Buffer {
  const out: Buffer[] = []
  for (let counter = 0, total = 0; total < length; counter++) {
    const block = createHash(hash).update(seed).update(Buffer.from([counter >>> 24, (counter >>> 16) & 0xff, (counter >>> 8) & 0xff, counter & 0xff])).digest()
    out.push(block)
    total += block.length
  }
  return Buffer.concat(out).subarray(0, length)
}

function pssSign (data: Buffer, key: KeyObject, hash: string, mgf1: string, saltLength: number): Buffer {
  const modulusBits = key.asymmetricKeyDetails?.modulusLength as number
  const emBits = modulusBits - 1
  const emLength = Math.ceil(emBits / 8)
  const messageHash = createHash(hash).update(data).digest()
  const salt = randomBytes(saltLength)
  const h = createHash(hash).update(Buffer.alloc(8)).update(messageHash).update(salt).digest()
  const db = Buffer.concat([Buffer.alloc(emLength - saltLength - h.length - 2), Buffer.from([1]), salt])
  const mask = mgf1Mask(mgf1, h, db.length)
  for (let i = 0; i < db.length; i++) db[i] = (db[i] as number) ^ (mask[i] as number)
  db[0] = (db[0] as number) & (0xff >> (8 * emLength - emBits))
  const encoded = Buffer.concat([db, h, Buffer.from([0xbc])])
  const k = Math.ceil(modulusBits / 8)
  return privateEncrypt({ key, padding: constants.RSA_NO_PADDING }, Buffer.concat([Buffer.alloc(k - emLength), encoded]))
}

export const algorithms = {
  ecdsaSha256: simple('ecdsa-sha256', '1.2.840.10045.4.3.2', 'sha256'),
  ecdsaSha384: simple('ecdsa-sha384', '1.2.840.10045.4.3.3', 'sha384'),
  ecdsaSha512: simple('ecdsa-sha512', '1.2.840.10045.4.3.4', 'sha512'),
  ecdsaSha224: simple('ecdsa-sha224', '1.2.840.10045.4.3.1', 'sha224'),
  ecdsaSha1: simple('ecdsa-sha1', '1.2.840.10045.4.1', 'sha1'),
  /** ECDSA with SHA-256 and a NULL parameter, which RFC 5758 leaves out. */
  ecdsaSha256WithNull: simple('ecdsa-sha256-null', '1.2.840.10045.4.3.2', 'sha256', nullValue()),
  rsaSha256: simple('rsa-sha256', '1.2.840.113549.1.1.11', 'sha256', nullValue()),
  rsaSha384: simple('rsa-sha384', '1.2.840.113549.1.1.12', 'sha384', nullValue()),
  rsaSha512: simple('rsa-sha512', '1.2.840.113549.1.1.13', 'sha512', nullValue()),
  rsaSha224: simple('rsa-sha224', '1.2.840.113549.1.1.14', 'sha224', nullValue()),
  rsaSha1: simple('rsa-sha1', '1.2.840.113549.1.1.5', 'sha1', nullValue()),
  rsaMd5: simple('rsa-md5', '1.2.840.113549.1.1.4', 'md5', nullValue()),
  /** md5WithRSA under the OIW arc (1.3.14.3.2.3), which OpenSSL knows as md5WithRSA too. */
  rsaMd5Oiw: simple('rsa-md5-oiw', '1.3.14.3.2.3', 'md5', nullValue()),
  rsaSha1Oiw: simple('rsa-sha1-oiw', '1.3.14.3.2.29', 'sha1', nullValue()),
  /** sha256WithRSAEncryption without its NULL parameter. */
  rsaSha256NoNull: simple('rsa-sha256-no-null', '1.2.840.113549.1.1.11', 'sha256'),
  ed25519: simple('ed25519', '1.3.101.112', null),
  ed448: simple('ed448', '1.3.101.113', null),
  dsaSha256: simple('dsa-sha256', '2.16.840.1.101.3.4.3.2', 'sha256'),
  dsaSha1: simple('dsa-sha1', '1.2.840.10040.4.3', 'sha1')
} satisfies Record<string, SignatureAlgorithm>

/** The usual algorithm for a key: SHA-256 (SHA-384 for P-384, SHA-512 for P-521), PKCS#1 v1.5 for RSA. */
export function defaultAlgorithm (key: ForgeKey): SignatureAlgorithm {
  switch (key.kind) {
    case 'ed25519': return algorithms.ed25519
    case 'ed448': return algorithms.ed448
    case 'p384': return algorithms.ecdsaSha384
    case 'p521': return algorithms.ecdsaSha512
    case 'dsa2048': return algorithms.dsaSha256
    default: return key.kind.startsWith('rsa') ? algorithms.rsaSha256 : algorithms.ecdsaSha256
  }
}

// ---------------------------------------------------------------------------------------------------------
// Extensions

export interface Extension {
  readonly oid: string
  readonly critical?: boolean
  /** The extension value (what goes inside the OCTET STRING). */
  readonly value: Buffer
}

export function encodeExtension (extension: Extension): Buffer {
  return sequence(oid(extension.oid), ...(extension.critical === true ? [boolean(true)] : []), octetString(extension.value))
}

/** Key usage bits as RFC 5280 numbers them (digitalSignature is bit 0). */
export const KU = Object.freeze({
  digitalSignature: 1 << 0, nonRepudiation: 1 << 1, keyEncipherment: 1 << 2, dataEncipherment: 1 << 3, keyAgreement: 1 << 4, keyCertSign: 1 << 5, cRLSign: 1 << 6, encipherOnly: 1 << 7, decipherOnly: 1 << 8
})

/** A named bit string (key usage, reasons, nsCertType), DER: most significant bit first, trailing zero bits dropped. */
export function namedBits (bits: number): Buffer {
  if (bits === 0) return bitString(Buffer.alloc(0))
  let highest = 0
  for (let bit = 0; bit < 16; bit++) if ((bits & (1 << bit)) !== 0) highest = bit
  const bytes = Buffer.alloc(Math.floor(highest / 8) + 1)
  for (let bit = 0; bit <= highest; bit++) if ((bits & (1 << bit)) !== 0) bytes[bit >> 3] = (bytes[bit >> 3] as number) | (0x80 >> (bit & 7))
  return bitString(bytes, 7 - (highest % 8))
}

export interface GeneralNames {
  uris?: string[]
  dnsNames?: string[]
  emails?: string[]
  ips?: Buffer[]
  directoryNames?: Buffer[]
}

export function generalNames (names: GeneralNames): Buffer[] {
  return [
    ...(names.emails ?? []).map(email => implicitPrimitive(1, Buffer.from(email, 'latin1'))),
    ...(names.dnsNames ?? []).map(dns => implicitPrimitive(2, Buffer.from(dns, 'latin1'))),
    ...(names.directoryNames ?? []).map(directoryName => explicit(4, directoryName)),
    ...(names.uris ?? []).map(uri => implicitPrimitive(6, Buffer.from(uri, 'latin1'))),
    ...(names.ips ?? []).map(ip => implicitPrimitive(7, ip))
  ]
}

export interface DistributionPoint {
  /** fullName URIs. */
  uris?: string[]
  /** nameRelativeToCRLIssuer: one CN. */
  relativeCommonName?: string
  reasons?: number
  crlIssuer?: Buffer
}

function distributionPointName (point: DistributionPoint): Buffer[] {
  if (point.relativeCommonName !== undefined) return [explicit(0, tlv(0xa1, sequence(oid('2.5.4.3'), utf8String(point.relativeCommonName))))]
  if (point.uris === undefined) return []
  return [explicit(0, tlv(0xa0, ...generalNames({ uris: point.uris })))]
}

export const extensions = {
  basicConstraints: (ca: boolean, options: { pathLength?: number, critical?: boolean } = {}): Extension => ({
    oid: '2.5.29.19', critical: options.critical ?? true, value: sequence(...(ca ? [boolean(true)] : []), ...(options.pathLength === undefined ? [] : [integer(options.pathLength)]))
  }),
  keyUsage: (bits: number, critical = true): Extension => ({ oid: '2.5.29.15', critical, value: namedBits(bits) }),
  extendedKeyUsage: (oids: string[], critical = false): Extension => ({ oid: '2.5.29.37', critical, value: sequence(...oids.map(oid)) }),
  subjectAltName: (names: GeneralNames, critical = false): Extension => ({ oid: '2.5.29.17', critical, value: sequence(...generalNames(names)) }),
  subjectKeyIdentifier: (id: Buffer, critical = false): Extension => ({ oid: '2.5.29.14', critical, value: octetString(id) }),
  authorityKeyIdentifier: (options: { keyIdentifier?: Buffer, issuer?: Buffer, serial?: Buffer }, critical = false): Extension => ({
    oid: '2.5.29.35',
    critical,
    value: sequence(
      ...(options.keyIdentifier === undefined ? [] : [implicitPrimitive(0, options.keyIdentifier)]),
      ...(options.issuer === undefined ? [] : [tlv(0xa1, explicit(4, options.issuer))]),
      ...(options.serial === undefined ? [] : [implicitPrimitive(2, integer(options.serial).subarray(2))])
    )
  }),
  crlDistributionPoints: (points: DistributionPoint[], critical = false): Extension => ({
    oid: '2.5.29.31',
    critical,
    value: sequence(...points.map(point => sequence(
      ...distributionPointName(point),
      ...(point.reasons === undefined ? [] : [tlv(0x81, namedBits(point.reasons).subarray(2))]),
      ...(point.crlIssuer === undefined ? [] : [tlv(0xa2, explicit(4, point.crlIssuer))])
    )))
  }),
  certificatePolicies: (policies: string[], critical = false): Extension => ({ oid: '2.5.29.32', critical, value: sequence(...policies.map(policy => sequence(oid(policy)))) }),
  /** Netscape certificate type; bit 0 is SSL client, bit 5 SSL CA. */
  nsCertType: (bits: number, critical = false): Extension => ({ oid: '2.16.840.1.113730.1.1', critical, value: namedBits(bits) }),
  /** RFC 3820 proxyCertInfo: any policy language (inherit all). */
  proxyCertInfo: (critical = true): Extension => ({ oid: '1.3.6.1.5.5.7.1.14', critical, value: sequence(sequence(oid('1.3.6.1.5.5.7.21.1'))) }),
  /** RFC 3779 IP address blocks: IPv4 prefixes as [address bytes, prefix length]. */
  ipAddrBlocks: (prefixes: Array<[number[], number]>, critical = true): Extension => ({
    oid: '1.3.6.1.5.5.7.1.7',
    critical,
    value: sequence(sequence(octetString(Buffer.from([0, 1])), sequence(...prefixes.map(([address, length]) => {
      const bytes = Buffer.from(address.slice(0, Math.ceil(length / 8)))
      return bitString(bytes, bytes.length * 8 - length)
    }))))
  }),
  /** RFC 3779 AS identifiers: one range. */
  autonomousSysIds: (min: number, max: number, critical = true): Extension => ({
    oid: '1.3.6.1.5.5.7.1.8', critical, value: sequence(explicit(0, sequence(sequence(integer(min), integer(max)))))
  }),
  policyConstraints: (requireExplicitPolicy: number, critical = true): Extension => ({ oid: '2.5.29.36', critical, value: sequence(implicitPrimitive(0, integer(requireExplicitPolicy).subarray(2))) }),
  policyMappings: (issuerPolicy: string, subjectPolicy: string, critical = true): Extension => ({ oid: '2.5.29.33', critical, value: sequence(sequence(oid(issuerPolicy), oid(subjectPolicy))) }),
  inhibitAnyPolicy: (skipCerts: number, critical = true): Extension => ({ oid: '2.5.29.54', critical, value: integer(skipCerts) }),
  /** Name constraints permitting (or, with `excluded`, excluding) DNS subtrees. */
  nameConstraints: (dnsNames: string[], options: { excluded?: boolean, minimum?: number } = {}): Extension => ({
    oid: '2.5.29.30',
    critical: true,
    value: sequence(tlv(options.excluded === true ? 0xa1 : 0xa0, ...dnsNames.map(dns => sequence(implicitPrimitive(2, Buffer.from(dns, 'latin1')), ...(options.minimum === undefined ? [] : [implicitPrimitive(0, integer(options.minimum).subarray(2))])))))
  }),
  /** An extension nobody knows. */
  unknown: (critical: boolean, dotted = '1.3.6.1.4.1.55555.1.1'): Extension => ({ oid: dotted, critical, value: nullValue() }),
  // CRL extensions
  crlNumber: (n: number, critical = false): Extension => ({ oid: '2.5.29.20', critical, value: integer(n) }),
  deltaCrlIndicator: (base: number): Extension => ({ oid: '2.5.29.27', critical: true, value: integer(base) }),
  issuingDistributionPoint: (options: DistributionPoint & { onlyUser?: boolean, onlyCa?: boolean, onlySomeReasons?: number, indirect?: boolean, onlyAttributes?: boolean }, critical = true): Extension => ({
    oid: '2.5.29.28',
    critical,
    value: sequence(
      ...distributionPointName(options),
      ...(options.onlyUser === true ? [implicitPrimitive(1, Buffer.from([0xff]))] : []),
      ...(options.onlyCa === true ? [implicitPrimitive(2, Buffer.from([0xff]))] : []),
      ...(options.onlySomeReasons === undefined ? [] : [tlv(0x83, namedBits(options.onlySomeReasons).subarray(2))]),
      ...(options.indirect === true ? [implicitPrimitive(4, Buffer.from([0xff]))] : []),
      ...(options.onlyAttributes === true ? [implicitPrimitive(5, Buffer.from([0xff]))] : [])
    )
  }),
  // CRL entry extensions
  reasonCode: (reason: number, critical = false): Extension => ({ oid: '2.5.29.21', critical, value: tlv(0x0a, Buffer.from([reason])) })
} satisfies Record<string, (...args: never[]) => Extension>

// ---------------------------------------------------------------------------------------------------------
// Certificates

/** Who signs: a name, a private key, and what a conforming certificate says of them. */
export interface Signer {
  readonly name: Buffer
  readonly key: ForgeKey
  readonly keyIdentifier: Buffer | null
  readonly serial: Buffer
}

/** Ways to break the encoding after the parts are right. */
export interface Tampering {
  /** Replace the AlgorithmIdentifier inside TBSCertificate (or TBSCertList). */
  innerAlgorithm?: Buffer
  /** Replace the outer AlgorithmIdentifier (after the signed part). */
  outerAlgorithm?: Buffer
  /** The signature BIT STRING's unused-bits count. */
  unusedBits?: number
  /** Bytes inside the outer SEQUENCE, after the signature. */
  afterSignature?: Buffer
  /** Bytes after the certificate. */
  afterCertificate?: Buffer
  /** Flip a bit of the signature. */
  corruptSignature?: boolean
  /** Sign this instead of the real TBS (so the signature belongs to other bytes). */
  signOther?: boolean
  /** Re-encode the outer SEQUENCE's length in the long form with a leading zero byte (BER, not DER). */
  longOuterLength?: boolean
}

export interface CertificateOptions {
  subject: Buffer
  /** The subject's key. */
  key: ForgeKey
  issuer: Signer
  serial?: Buffer
  /** The serial number's INTEGER element as written (a non-minimal encoding, a negative number). */
  serialRaw?: Buffer
  notBefore?: Date
  notAfter?: Date
  /** Raw time elements, to write what `time()` would not. */
  notBeforeRaw?: Buffer
  notAfterRaw?: Buffer
  /** 0 = v1, 1 = v2, 2 = v3 (default); `null` leaves the version out. */
  version?: number | null
  algorithm?: SignatureAlgorithm
  extensions?: Extension[]
  /** Raw extension elements appended after `extensions` (duplicates, broken encodings). */
  rawExtensions?: Buffer[]
  /** Replace the SubjectPublicKeyInfo. */
  spki?: Buffer
  /** Elements written after the SubjectPublicKeyInfo, before the extensions (unique identifiers, anything). */
  afterKey?: Buffer[]
  /** Override the issuer name written in the certificate (the signer still signs). */
  issuerName?: Buffer
  tamper?: Tampering
}

export const randomSerial = (): Buffer => Buffer.concat([Buffer.from([0x01]), randomBytes(15)])

/** Signs `tbs` and wraps it: SEQUENCE { tbs, algorithm, BIT STRING signature }, with any tampering asked for. */
function signed (tbs: Buffer, algorithm: SignatureAlgorithm, key: KeyObject, tamper: Tampering = {}): Buffer {
  let signature = algorithm.sign(tamper.signOther === true ? Buffer.concat([tbs, Buffer.from([0])]) : tbs, key)
  if (tamper.corruptSignature === true) {
    signature = Buffer.from(signature)
    const at = Math.floor(signature.length / 2)
    signature[at] = (signature[at] as number) ^ 0x01
  }
  const body = Buffer.concat([tbs, tamper.outerAlgorithm ?? algorithm.identifier, bitString(signature, tamper.unusedBits ?? 0), tamper.afterSignature ?? Buffer.alloc(0)])
  let outer = sequence(body)
  if (tamper.longOuterLength === true) {
    const header = element(outer, 0)
    const length = header.end - header.start
    outer = Buffer.concat([Buffer.from([0x30, 0x83, 0x00, length >> 8, length & 0xff]), outer.subarray(header.start)])
  }
  return Buffer.concat([outer, tamper.afterCertificate ?? Buffer.alloc(0)])
}

export function forgeCertificate (options: CertificateOptions): Buffer {
  const algorithm = options.algorithm ?? defaultAlgorithm(options.issuer.key)
  const now = Date.now()
  const version = options.version === undefined ? 2 : options.version
  const extensionElements = [...(options.extensions ?? []).map(encodeExtension), ...(options.rawExtensions ?? [])]
  const tbs = sequence(
    ...(version === null ? [] : [explicit(0, integer(version))]),
    options.serialRaw ?? integer(options.serial ?? randomSerial()),
    options.tamper?.innerAlgorithm ?? algorithm.identifier,
    options.issuerName ?? options.issuer.name,
    sequence(options.notBeforeRaw ?? time(options.notBefore ?? new Date(now - 3_600_000)), options.notAfterRaw ?? time(options.notAfter ?? new Date(now + 30 * 86_400_000))),
    options.subject,
    options.spki ?? options.key.spki,
    ...(options.afterKey ?? []),
    ...(extensionElements.length === 0 ? [] : [explicit(3, sequence(...extensionElements))])
  )
  return signed(tbs, algorithm, options.issuer.key.privateKey, options.tamper)
}

/** A CA (or any certificate holder): its certificate and what signing under it needs. */
export interface Authority extends Signer {
  readonly certificate: Buffer
}

export function authority (certificate: Buffer, key: ForgeKey): Authority {
  const parts = certificateParts(certificate)
  return { certificate, key, name: parts.subject, keyIdentifier: parts.keyIdentifier, serial: parts.serial }
}

/** An authority from PEM made elsewhere (mtls-pki's CertificateAuthority: `certificate`, `key`). */
export function authorityFromPem (certificatePem: string, keyPem: string): Authority {
  const privateKey = createPrivateKey(keyPem)
  const spki = privateKeyToSpki(privateKey)
  const kind = kindOf(privateKey)
  return authority(fromPem(certificatePem)[0] as Buffer, { kind, privateKey, spki, pem: keyPem })
}

function privateKeyToSpki (privateKey: KeyObject): Buffer {
  return Buffer.from(createPublicKey(privateKey).export({ type: 'spki', format: 'der' }))
}

function kindOf (key: KeyObject): KeyKind {
  const details = key.asymmetricKeyDetails ?? {}
  switch (key.asymmetricKeyType) {
    case 'rsa': return `rsa${details.modulusLength as number}` as KeyKind
    case 'ed25519': return 'ed25519'
    case 'ed448': return 'ed448'
    case 'ec': return ({ prime256v1: 'p256', secp384r1: 'p384', secp521r1: 'p521' } as Record<string, KeyKind>)[details.namedCurve as string] ?? 'p256'
    default: throw new Error(`no forge key kind for ${String(key.asymmetricKeyType)}`)
  }
}

export interface CaOptions {
  key: ForgeKey
  subject: Buffer
  algorithm?: SignatureAlgorithm
  notBefore?: Date
  notAfter?: Date
  pathLength?: number
  /** Replace the default extensions (basic constraints, key usage, SKI, AKI). */
  extensions?: Extension[]
  /** Added after the default extensions. */
  extraExtensions?: Extension[]
  /** Replace the SubjectPublicKeyInfo. */
  spki?: Buffer
  tamper?: Tampering
}

/** The extensions a conforming CA certificate carries. */
export function caExtensions (key: ForgeKey, issuer: Signer | null, pathLength?: number): Extension[] {
  return [
    extensions.basicConstraints(true, pathLength === undefined ? {} : { pathLength }),
    extensions.keyUsage(KU.keyCertSign | KU.cRLSign),
    extensions.subjectKeyIdentifier(keyIdentifier(key.spki)),
    ...(issuer?.keyIdentifier == null ? [] : [extensions.authorityKeyIdentifier({ keyIdentifier: issuer.keyIdentifier })])
  ]
}

export function selfSignedCa (options: CaOptions): Authority {
  const signer: Signer = { name: options.subject, key: options.key, keyIdentifier: keyIdentifier(options.key.spki), serial: randomSerial() }
  return caCertificate(signer, options, signer.serial)
}

export function issueCa (issuer: Signer, options: CaOptions): Authority {
  return caCertificate(issuer, options)
}

function caCertificate (issuer: Signer, options: CaOptions, serial?: Buffer): Authority {
  const { extensions: replaced, extraExtensions, pathLength, key, ...rest } = options
  const selfSigned = serial !== undefined
  const certificate = forgeCertificate({
    ...rest,
    key,
    issuer,
    ...(serial === undefined ? {} : { serial }),
    extensions: [...(replaced ?? caExtensions(key, selfSigned ? null : issuer, pathLength)), ...(extraExtensions ?? [])]
  })
  return authority(certificate, key)
}

export interface LeafOptions extends Partial<Omit<CertificateOptions, 'issuer' | 'key'>> {
  key: ForgeKey
  /** A SPIFFE ID (the URI SAN). */
  spiffeId?: string
  /** Replace the default extensions (basic constraints, key usage, EKU clientAuth, SAN, SKI, AKI). */
  extensions?: Extension[]
  extraExtensions?: Extension[]
}

export const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2'
export const SERVER_AUTH = '1.3.6.1.5.5.7.3.1'

/** The extensions a conforming TLS client certificate carries. */
export function clientExtensions (key: ForgeKey, issuer: Signer, spiffeId = 'spiffe://mycompany.com/production/forged'): Extension[] {
  return [
    extensions.basicConstraints(false),
    extensions.keyUsage(KU.digitalSignature),
    extensions.extendedKeyUsage([CLIENT_AUTH]),
    extensions.subjectAltName({ uris: [spiffeId] }),
    extensions.subjectKeyIdentifier(keyIdentifier(key.spki)),
    ...(issuer.keyIdentifier === null ? [] : [extensions.authorityKeyIdentifier({ keyIdentifier: issuer.keyIdentifier })])
  ]
}

/** A TLS client certificate issued by `issuer`: conforming unless the options say otherwise. */
export function issueLeaf (issuer: Signer, options: LeafOptions): Buffer {
  const { spiffeId, extraExtensions, ...rest } = options
  return forgeCertificate({
    subject: name(['CN', 'forged-client']),
    ...rest,
    issuer,
    extensions: [...(options.extensions ?? clientExtensions(options.key, issuer, spiffeId)), ...(extraExtensions ?? [])]
  })
}

// ---------------------------------------------------------------------------------------------------------
// CRLs

export interface RevokedEntry {
  serial: Buffer
  date?: Date
  extensions?: Extension[]
}

export interface CrlOptions {
  issuer: Signer
  /** Override the issuer name written in the CRL. */
  issuerName?: Buffer
  thisUpdate?: Date
  /** `null` leaves it out. */
  nextUpdate?: Date | null
  thisUpdateRaw?: Buffer
  nextUpdateRaw?: Buffer
  revoked?: RevokedEntry[]
  algorithm?: SignatureAlgorithm
  /** Default: a CRL number and the issuer's key identifier. */
  extensions?: Extension[]
  extraExtensions?: Extension[]
  /** The signing key, when another than the issuer's. */
  signingKey?: ForgeKey
  tamper?: Tampering
}

export function forgeCrl (options: CrlOptions): Buffer {
  const key = options.signingKey ?? options.issuer.key
  const algorithm = options.algorithm ?? defaultAlgorithm(key)
  const now = Date.now()
  const revoked = options.revoked ?? []
  const crlExtensions = [
    ...(options.extensions ?? [
      extensions.crlNumber(Math.floor(now / 1000)),
      ...(options.issuer.keyIdentifier === null ? [] : [extensions.authorityKeyIdentifier({ keyIdentifier: options.issuer.keyIdentifier })])
    ]),
    ...(options.extraExtensions ?? [])
  ]
  const nextUpdate = options.nextUpdate === undefined ? new Date(now + 7 * 86_400_000) : options.nextUpdate
  const tbs = sequence(
    integer(1),
    options.tamper?.innerAlgorithm ?? algorithm.identifier,
    options.issuerName ?? options.issuer.name,
    options.thisUpdateRaw ?? time(options.thisUpdate ?? new Date(now - 3_600_000)),
    ...(options.nextUpdateRaw !== undefined ? [options.nextUpdateRaw] : nextUpdate === null ? [] : [time(nextUpdate)]),
    ...(revoked.length === 0
      ? []
      : [sequence(...revoked.map(entry => sequence(
          integer(entry.serial),
          time(entry.date ?? new Date(now - 7_200_000)),
          ...(entry.extensions === undefined || entry.extensions.length === 0 ? [] : [sequence(...entry.extensions.map(encodeExtension))])
        )))]),
    ...(crlExtensions.length === 0 ? [] : [explicit(0, sequence(...crlExtensions.map(encodeExtension)))])
  )
  return signed(tbs, algorithm, key.privateKey, options.tamper)
}

// ---------------------------------------------------------------------------------------------------------
// PEM

export function toPem (der: Uint8Array, label = 'CERTIFICATE'): string {
  const base64 = Buffer.from(der).toString('base64')
  return `-----BEGIN ${label}-----\n${base64.replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END ${label}-----\n`
}

export function fromPem (pem: string): Buffer[] {
  const out: Buffer[] = []
  for (const match of pem.matchAll(/-----BEGIN [A-Z0-9 ]+-----([\s\S]*?)-----END [A-Z0-9 ]+-----/g)) out.push(Buffer.from((match[1] as string).replace(/\s+/g, ''), 'base64'))
  return out
}
