import { X509Certificate as NodeX509Certificate, createPrivateKey, type KeyObject } from 'node:crypto'
import { AsnConvert } from '@peculiar/asn1-schema'
import { IssuingDistributionPoint, id_ce_issuingDistributionPoint as issuingDistributionPointOid, type GeneralName } from '@peculiar/asn1-x509'
import { PkiError } from './errors.js'
import { fingerprint256 } from './fingerprint.js'
import { readPemBlocks, type PemBlock } from './pem.js'
import { DAY_MS, daysUntil } from './validity.js'
import { x509 } from './x509.js'

/** What `mtls-pki inspect` shows of a certificate. */
export interface CertificateDescription {
  readonly subject: string
  /** `URI:…`, `DNS:…`, `IP:…`, `email:…`, in certificate order; odd characters JSON-quoted. */
  readonly subjectAltNames: readonly string[]
  readonly issuer: string
  readonly serialNumber: string
  /** `ECDSA P-256`, `Ed25519`, `RSA 2048`, ... */
  readonly keyType: string
  readonly notBefore: Date
  readonly notAfter: Date
  readonly isCa: boolean
  readonly keyUsages: readonly string[]
  readonly extendedKeyUsages: readonly string[]
  /** The URIs of the cRLDistributionPoints extension; empty without one. */
  readonly crlDistributionPoints: readonly string[]
  /** The OCSP URLs of the authorityInfoAccess extension; empty without one. */
  readonly ocspUrls: readonly string[]
  /** Whether the TLS feature extension asks for status_request (must-staple). */
  readonly mustStaple: boolean
  readonly fingerprint256: string
}

const LABEL_WIDTH = 16
const SAN_LABELS: Record<string, string> = { url: 'URI', dns: 'DNS', ip: 'IP', email: 'email', dn: 'DirName', guid: 'GUID', upn: 'UPN', id: 'RID' }
const EKU_NAMES = new Map<string, string>(Object.entries(x509.ExtendedKeyUsage).map(([name, oid]) => [oid, name]))

export function describeCertificate (der: Uint8Array): CertificateDescription {
  const cert = new x509.X509Certificate(der)
  const native = new NodeX509Certificate(der)
  const san = cert.getExtension(x509.SubjectAlternativeNameExtension)
  const basic = cert.getExtension(x509.BasicConstraintsExtension)
  const keyUsage = cert.getExtension(x509.KeyUsagesExtension)
  const eku = cert.getExtension(x509.ExtendedKeyUsageExtension)
  const crlDistributionPoints = cert.getExtension(x509.CRLDistributionPointsExtension)?.distributionPoints
    .flatMap(point => uris(point.distributionPoint?.fullName)) ?? []
  const ocspUrls = (cert.getExtension(x509.AuthorityInfoAccessExtension)?.ocsp ?? []).filter(name => name.type === 'url').map(name => name.value)
  // RFC 7633: SEQUENCE { INTEGER 5 }, status_request; read as bytes, since @peculiar/x509 has no class for it.
  const tlsFeature = cert.getExtension('1.3.6.1.5.5.7.1.24')
  return {
    subject: cert.subject,
    subjectAltNames: (san?.names.items ?? []).map(name => `${SAN_LABELS[name.type] ?? name.type}:${quoteIfOdd(name.value)}`),
    issuer: cert.issuer,
    serialNumber: cert.serialNumber.toUpperCase(),
    keyType: describeKey(native.publicKey),
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
    isCa: basic?.ca ?? false,
    keyUsages: keyUsage === null
      ? []
      : Object.entries(x509.KeyUsageFlags)
        .filter(([, flag]) => typeof flag === 'number' && (keyUsage.usages & flag) !== 0)
        .map(([name]) => name),
    extendedKeyUsages: (eku?.usages ?? []).map(oid => EKU_NAMES.get(String(oid)) ?? String(oid)),
    crlDistributionPoints,
    ocspUrls,
    mustStaple: tlsFeature !== null && Buffer.from(tlsFeature.value).includes(Buffer.from([0x02, 0x01, 0x05])),
    fingerprint256: fingerprint256(der)
  }
}

/** A person's view of every certificate, CRL and key in a PEM text. Keys are named, never printed. */
export function formatInspection (text: string, source: string, now = Date.now()): string {
  const blocks = readPemBlocks(text)
  if (blocks.length === 0) {
    throw new PkiError('ERR_MTLS_PKI_MALFORMED_INPUT', `${source}: no PEM block found (expected -----BEGIN CERTIFICATE----- or similar)`, { file: source })
  }
  return blocks.map((block, index) => {
    const heading = blocks.length > 1 ? `${source} [${index + 1}/${blocks.length}]` : source
    try {
      return `${heading}\n${formatBlock(block, now)}`
    } catch (err) {
      throw new PkiError('ERR_MTLS_PKI_MALFORMED_INPUT', `${heading}: malformed ${block.label} (${(err as Error).message})`, { file: source, cause: err })
    }
  }).join('\n')
}

function formatBlock (block: PemBlock, now: number): string {
  switch (block.label) {
    case 'CERTIFICATE': return formatCertificate(describeCertificate(block.der), now)
    case 'X509 CRL': return formatCrl(new x509.X509Crl(block.der), now)
    case 'PRIVATE KEY':
    case 'EC PRIVATE KEY':
    case 'RSA PRIVATE KEY':
      return fields([['private key', `${describeKey(createPrivateKey({ key: block.der, format: 'der', type: privateKeyDerType(block.label) }))} (not shown)`]])
    default:
      return fields([['block', `${block.label} (not inspected)`]])
  }
}

function formatCertificate (cert: CertificateDescription, now: number): string {
  return fields([
    ['subject', cert.subject || '(empty)'],
    ['SANs', cert.subjectAltNames.length === 0 ? '(none)' : cert.subjectAltNames.join('\n' + ' '.repeat(2 + LABEL_WIDTH))],
    ['issuer', cert.issuer],
    ['serial', cert.serialNumber],
    ['key', cert.keyType],
    ['not before', cert.notBefore.toISOString()],
    ['not after', `${cert.notAfter.toISOString()} (${validityWords(cert.notBefore, cert.notAfter, now)})`],
    ['CA', cert.isCa ? 'yes' : 'no'],
    ['key usage', cert.keyUsages.join(', ') || '(none)'],
    ['ext key usage', cert.extendedKeyUsages.join(', ') || '(none)'],
    ...optionalRow('CRL DPs', cert.crlDistributionPoints),
    ...optionalRow('OCSP', cert.ocspUrls),
    ...(cert.mustStaple ? [['must-staple', 'yes (TLS feature status_request)'] as [string, string]] : []),
    ['SHA-256', cert.fingerprint256]
  ])
}

function formatCrl (crl: x509.X509Crl, now: number): string {
  return fields([
    ['CRL issuer', crl.issuer],
    ['this update', crl.thisUpdate.toISOString()],
    ['next update', crl.nextUpdate === undefined ? '(none)' : `${crl.nextUpdate.toISOString()} (${days(daysUntil(crl.nextUpdate, now))} left)`],
    ['revoked', crl.entries.length === 0 ? '(none)' : crl.entries.map(entry => entry.serialNumber.toUpperCase()).join(', ')],
    ...optionalRow('shard of', issuingDistributionPoint(crl)),
    ['SHA-256', fingerprint256(crl.rawData)]
  ])
}

// The URIs of a CRL's issuingDistributionPoint: what a shard covers.
function issuingDistributionPoint (crl: x509.X509Crl): string[] {
  const extension = crl.getExtension(issuingDistributionPointOid)
  return extension === null ? [] : uris(AsnConvert.parse(extension.value, IssuingDistributionPoint).distributionPoint?.fullName)
}

function uris (names: GeneralName[] | undefined): string[] {
  return (names ?? []).flatMap(name => name.uniformResourceIdentifier ?? [])
}

// A row only where there is something to show: most certificates name no distribution point.
function optionalRow (name: string, values: readonly string[]): Array<[string, string]> {
  return values.length === 0 ? [] : [[name, values.join(', ')]]
}

function validityWords (notBefore: Date, notAfter: Date, now: number): string {
  if (notBefore.getTime() > now) return `NOT YET VALID, starts in ${days(Math.ceil((notBefore.getTime() - now) / DAY_MS))}`
  if (notAfter.getTime() <= now) return `EXPIRED ${days(Math.floor((now - notAfter.getTime()) / DAY_MS))} ago`
  return `${days(daysUntil(notAfter, now))} left`
}

function days (count: number): string {
  return count === 1 ? '1 day' : `${count} days`
}

function describeKey (key: KeyObject): string {
  const details = key.asymmetricKeyDetails ?? {}
  switch (key.asymmetricKeyType) {
    case 'ec': return `ECDSA ${({ prime256v1: 'P-256', secp384r1: 'P-384', secp521r1: 'P-521' } as Record<string, string>)[details.namedCurve ?? ''] ?? details.namedCurve ?? ''}`
    case 'rsa': return `RSA ${details.modulusLength ?? ''}`
    case 'ed25519': return 'Ed25519'
    default: return key.asymmetricKeyType ?? 'unknown'
  }
}

function privateKeyDerType (label: string): 'pkcs8' | 'sec1' | 'pkcs1' {
  if (label === 'EC PRIVATE KEY') return 'sec1'
  if (label === 'RSA PRIVATE KEY') return 'pkcs1'
  return 'pkcs8'
}

function quoteIfOdd (value: string): string {
  return /^[\x21-\x7e]*$/.test(value) && !value.includes('"') ? value : JSON.stringify(value)
}

function fields (rows: Array<[string, string]>): string {
  return rows.map(([name, value]) => `  ${(name + ':').padEnd(LABEL_WIDTH)}${value}`).join('\n')
}
