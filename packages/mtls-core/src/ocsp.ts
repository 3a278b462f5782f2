// OCSP (RFC 6960): requests built and responses read with @peculiar/asn1-ocsp (the ASN.1 schemas of the
// @peculiar/x509 family), signatures checked with node:crypto through the allowlist ChainVerifier uses.
import { createHash, randomBytes, X509Certificate } from 'node:crypto'
import {
  BasicOCSPResponse,
  CertID,
  Nonce,
  OCSPRequest,
  OCSPResponse,
  OCSPResponseStatus,
  Request,
  TBSRequest,
  id_kp_OCSPSigning as OCSP_SIGNING,
  id_pkix_ocsp_basic as OCSP_BASIC,
  id_pkix_ocsp_nonce as OCSP_NONCE,
  type SingleResponse
} from '@peculiar/asn1-ocsp'
import { AsnArray, AsnConvert, AsnPropTypes, AsnType, AsnTypeTypes, OctetString } from '@peculiar/asn1-schema'
import {
  AlgorithmIdentifier,
  AuthorityInfoAccessSyntax,
  Certificate,
  CRLDistributionPoints,
  Extension,
  id_ad_ocsp as AD_OCSP,
  id_ce_cRLDistributionPoints as CRL_DISTRIBUTION_POINTS,
  id_pe_authorityInfoAccess as AUTHORITY_INFO_ACCESS
} from '@peculiar/asn1-x509'
import { CertificateError, MtlsCoreError, type OcspErrorCode } from './errors.js'
import { signatureAlgorithm, verifiesWith } from './signature-allowlist.js'

/** What `verifyOcspResponse` found wrong: `check` names the check, the message says how it failed. */
export class OcspError extends MtlsCoreError<OcspErrorCode> {
  static override readonly kind: string = 'OcspError'
  /** The check that failed. */
  readonly check: OcspCheck

  constructor (check: OcspCheck, message: string, options: { cause?: unknown } = {}) {
    super('ERR_MTLS_OCSP_INVALID', `OCSP response refused: ${message}`, options)
    this.check = check
  }
}

/** Which check of an OCSP response failed. */
export type OcspCheck =
  | 'malformed'
  | 'response-status'
  | 'response-type'
  | 'signature-algorithm'
  | 'signature'
  | 'responder-certificate'
  | 'cert-id'
  | 'not-yet-valid'
  | 'expired'
  | 'no-next-update'
  | 'nonce'

/** The certificate's status, as a verified OCSP response gives it. */
export interface OcspStatus {
  readonly status: 'good' | 'revoked' | 'unknown'
  readonly thisUpdate: Date
  readonly nextUpdate: Date
  readonly producedAt: Date
  /** For `revoked`. */
  readonly revokedAt?: Date
  /** For `revoked` with a reason: the CRL reason name (`keyCompromise`, ...). */
  readonly reason?: string
}

export interface OcspRequestOptions {
  /** Adds a nonce extension (RFC 8954: 32 random bytes, or these bytes) that the response must echo. Default: `false`. */
  nonce?: boolean | Uint8Array
}

/** An OCSP request and what its response must match. */
export interface OcspRequestMessage {
  /** The request, DER: the body of an HTTP POST with `Content-Type: application/ocsp-request`. */
  readonly der: Buffer
  /** The nonce sent, or `null`: give it to `verifyOcspResponse`. */
  readonly nonce: Buffer | null
}

export interface VerifyOcspOptions {
  /** The certificate asked about, DER. */
  certificate: Uint8Array
  /** Its issuer's certificate, DER. */
  issuer: Uint8Array
  /** The time to judge at, in milliseconds since the epoch. Default: now. */
  now?: number
  /** Clock skew allowed on thisUpdate and nextUpdate, in milliseconds. Default: 5 minutes (OpenSSL's `-validity_period` default). */
  skewMs?: number
  /** The nonce the request carried (`ocspRequest().nonce`): the response must echo it. */
  nonce?: Uint8Array | null
}

/** Where a certificate says its revocation status is published, and whether it demands a stapled response. */
export interface RevocationPoints {
  /** The id-ad-ocsp URIs of authorityInfoAccess. */
  readonly ocspUrls: readonly string[]
  /** The URIs of cRLDistributionPoints. */
  readonly crlDistributionPoints: readonly string[]
  /** TLS feature extension with status_request (RFC 7633, must-staple). */
  readonly mustStaple: boolean
}

const SHA1 = '1.3.14.3.2.26'
const CERT_ID_HASHES: Readonly<Record<string, string>> = {
  [SHA1]: 'sha1',
  '2.16.840.1.101.3.4.2.1': 'sha256',
  '2.16.840.1.101.3.4.2.2': 'sha384',
  '2.16.840.1.101.3.4.2.3': 'sha512'
}
const TLS_FEATURE = '1.3.6.1.5.5.7.1.24'
const STATUS_REQUEST = 5
// A response carries the responder's certificate, maybe its chain: more than a few is not a responder's answer.
const MAX_RESPONSE_CERTIFICATES = 8
const DEFAULT_SKEW_MS = 5 * 60_000
const REASONS: Readonly<Record<number, string>> = {
  0: 'unspecified',
  1: 'keyCompromise',
  2: 'cACompromise',
  3: 'affiliationChanged',
  4: 'superseded',
  5: 'cessationOfOperation',
  6: 'certificateHold',
  8: 'removeFromCRL',
  9: 'privilegeWithdrawn',
  10: 'aACompromise'
}

/** An OCSP request for one certificate, with the SHA-1 CertID that RFC 6960 and OpenSSL use. */
export function ocspRequest (certificate: Uint8Array, issuer: Uint8Array, options: OcspRequestOptions = {}): OcspRequestMessage {
  const certId = certIdFor(parseCertificate(certificate, 'certificate'), parseCertificate(issuer, 'issuer'), SHA1)
  const nonce = options.nonce === undefined || options.nonce === false ? null : Buffer.from(options.nonce === true ? randomBytes(32) : options.nonce)
  const tbsRequest = new TBSRequest({ requestList: [new Request({ reqCert: certId })] })
  if (nonce !== null) {
    tbsRequest.requestExtensions = [new Extension({ extnID: OCSP_NONCE, critical: false, extnValue: new OctetString(AsnConvert.serialize(new Nonce(nonce))) })]
  }
  return Object.freeze({ der: Buffer.from(AsnConvert.serialize(new OCSPRequest({ tbsRequest }))), nonce })
}

/**
 * Verifies an OCSP response about `certificate` and returns its status, or throws OcspError naming the check that
 * failed: a successful basic response, signed (with an allowed algorithm) by the issuer or by a responder
 * certificate in the response that the issuer signed, that carries id-kp-OCSPSigning and is valid now; a
 * SingleResponse whose CertID matches the certificate; thisUpdate not in the future and nextUpdate present and not
 * past, beyond `skewMs`; the nonce echoed when one was sent.
 */
export function verifyOcspResponse (response: Uint8Array, options: VerifyOcspOptions): OcspStatus {
  const now = options.now ?? Date.now()
  const skewMs = options.skewMs ?? DEFAULT_SKEW_MS
  const certificate = parseCertificate(options.certificate, 'certificate')
  const issuer = parseCertificate(options.issuer, 'issuer')
  const basic = readBasicResponse(response)
  const data = basic.tbsResponseData

  const single = matchingResponse(data.responses, certificate, issuer)
  checkSignature(basic, options.issuer, now, skewMs)
  if (single.thisUpdate.getTime() > now + skewMs) {
    throw new OcspError('not-yet-valid', `thisUpdate ${single.thisUpdate.toISOString()} is in the future`)
  }
  if (single.nextUpdate === undefined) throw new OcspError('no-next-update', 'no nextUpdate: nothing says how long the status holds')
  if (single.nextUpdate.getTime() < now - skewMs) {
    throw new OcspError('expired', `nextUpdate ${single.nextUpdate.toISOString()} has passed`)
  }
  if (options.nonce !== undefined && options.nonce !== null) checkNonce(data.responseExtensions, options.nonce)

  const base = { thisUpdate: single.thisUpdate, nextUpdate: single.nextUpdate, producedAt: data.producedAt }
  const { certStatus } = single
  if (certStatus.revoked !== undefined) {
    const code = certStatus.revoked.revocationReason?.reason
    const reason = code === undefined ? undefined : REASONS[code] ?? `reason ${code}`
    return Object.freeze({ status: 'revoked', ...base, revokedAt: certStatus.revoked.revocationTime, ...(reason === undefined ? {} : { reason }) })
  }
  return Object.freeze({ status: certStatus.good !== undefined ? 'good' : 'unknown', ...base })
}

/** Where `certificate` (DER) says its revocation status is published: OCSP URLs, CRL distribution points, must-staple. */
export function revocationPointsOf (certificate: Uint8Array): RevocationPoints {
  const extensions = parseCertificate(certificate, 'certificate').tbsCertificate.extensions ?? []
  const ocspUrls: string[] = []
  const crlDistributionPoints: string[] = []
  let mustStaple = false
  for (const extension of extensions) {
    const value = extension.extnValue.buffer
    if (extension.extnID === AUTHORITY_INFO_ACCESS) {
      for (const access of AsnConvert.parse(value, AuthorityInfoAccessSyntax)) {
        const uri = access.accessLocation.uniformResourceIdentifier
        if (access.accessMethod === AD_OCSP && uri !== undefined) ocspUrls.push(uri)
      }
    } else if (extension.extnID === CRL_DISTRIBUTION_POINTS) {
      for (const point of AsnConvert.parse(value, CRLDistributionPoints)) {
        for (const name of point.distributionPoint?.fullName ?? []) {
          if (name.uniformResourceIdentifier !== undefined) crlDistributionPoints.push(name.uniformResourceIdentifier)
        }
      }
    } else if (extension.extnID === TLS_FEATURE) {
      mustStaple = tlsFeatures(value).includes(STATUS_REQUEST)
    }
  }
  return Object.freeze({ ocspUrls: Object.freeze(ocspUrls), crlDistributionPoints: Object.freeze(crlDistributionPoints), mustStaple })
}

/** The first OCSP URL of `certificate`'s authorityInfoAccess, or `null`. */
export function ocspUrlOf (certificate: Uint8Array): string | null {
  return revocationPointsOf(certificate).ocspUrls[0] ?? null
}

// TLS feature ::= SEQUENCE OF INTEGER (RFC 7633); the schema's decorator applied by hand, as the build has no decorators.
class TlsFeatures extends AsnArray<number> {}
AsnType({ type: AsnTypeTypes.Sequence, itemType: AsnPropTypes.Integer })(TlsFeatures)

function tlsFeatures (value: ArrayBuffer): number[] {
  return [...AsnConvert.parse(value, TlsFeatures)]
}

// A lookup reads the same certificate and issuer three times (the request, the response's check, the revocation
// points), and the schema parse is most of its CPU: each array is parsed once while its bytes stay the same.
const parsed = new WeakMap<Uint8Array, { readonly bytes: Buffer, readonly certificate: Certificate }>()

function parseCertificate (der: Uint8Array, what: string): Certificate {
  const known = parsed.get(der)
  if (known !== undefined && known.bytes.equals(der)) return known.certificate
  try {
    const certificate = AsnConvert.parse(der, Certificate)
    parsed.set(der, { bytes: Buffer.from(der), certificate })
    return certificate
  } catch (err) {
    throw new CertificateError('ERR_MTLS_CERTIFICATE_MALFORMED', `OCSP: the ${what} is not a readable certificate (${(err as Error).message})`, { cause: err })
  }
}

function readBasicResponse (response: Uint8Array): BasicOCSPResponse {
  let outer: OCSPResponse
  try {
    outer = AsnConvert.parse(response, OCSPResponse)
  } catch (err) {
    throw new OcspError('malformed', `not an OCSPResponse (${(err as Error).message})`, { cause: err })
  }
  if (outer.responseStatus !== OCSPResponseStatus.successful) {
    throw new OcspError('response-status', `the responder answered ${OCSPResponseStatus[outer.responseStatus] ?? `status ${String(outer.responseStatus)}`}, not successful`)
  }
  if (outer.responseBytes === undefined) throw new OcspError('response-type', 'a successful response without responseBytes')
  if (outer.responseBytes.responseType !== OCSP_BASIC) throw new OcspError('response-type', `response type ${outer.responseBytes.responseType}, not id-pkix-ocsp-basic`)
  try {
    return AsnConvert.parse(outer.responseBytes.response.buffer, BasicOCSPResponse)
  } catch (err) {
    throw new OcspError('malformed', `not a BasicOCSPResponse (${(err as Error).message})`, { cause: err })
  }
}

function certIdFor (certificate: Certificate, issuer: Certificate, hashOid: string): CertID {
  const digest = CERT_ID_HASHES[hashOid] as string
  const hash = (bytes: ArrayBuffer): OctetString => new OctetString(createHash(digest).update(new Uint8Array(bytes)).digest())
  return new CertID({
    // AlgorithmIdentifier with NULL parameters, as OpenSSL writes it.
    hashAlgorithm: new AlgorithmIdentifier({ algorithm: hashOid, parameters: null }),
    issuerNameHash: hash(AsnConvert.serialize(issuer.tbsCertificate.subject)),
    issuerKeyHash: hash(issuer.tbsCertificate.subjectPublicKeyInfo.subjectPublicKey),
    serialNumber: certificate.tbsCertificate.serialNumber
  })
}

function matchingResponse (responses: readonly SingleResponse[], certificate: Certificate, issuer: Certificate): SingleResponse {
  const serial = hex(certificate.tbsCertificate.serialNumber)
  for (const single of responses) {
    const hashOid = single.certID.hashAlgorithm.algorithm
    if (CERT_ID_HASHES[hashOid] === undefined) continue
    const expected = certIdFor(certificate, issuer, hashOid)
    if (hex(single.certID.serialNumber) === serial &&
      hex(single.certID.issuerNameHash.buffer) === hex(expected.issuerNameHash.buffer) &&
      hex(single.certID.issuerKeyHash.buffer) === hex(expected.issuerKeyHash.buffer)) {
      return single
    }
  }
  const answered = responses.map(single => hex(single.certID.serialNumber).toUpperCase()).join(', ')
  throw new OcspError('cert-id', `no SingleResponse for serial ${serial.toUpperCase()} under this issuer (it answers for ${answered === '' ? 'nothing' : answered})`)
}

function checkSignature (basic: BasicOCSPResponse, issuerDer: Uint8Array, now: number, skewMs: number): void {
  const identifier = new Uint8Array(AsnConvert.serialize(basic.signatureAlgorithm))
  const algorithm = signatureAlgorithm(identifier)
  if ('refused' in algorithm) throw new OcspError('signature-algorithm', `signed with ${algorithm.name}, which is ${algorithm.refused === 'weak' ? 'too weak' : 'not allowed'}`)
  const parts = {
    signed: new Uint8Array(basic.tbsResponseDataRaw ?? AsnConvert.serialize(basic.tbsResponseData)),
    signatureAlgorithm: basic.signatureAlgorithm.algorithm,
    signature: new Uint8Array(basic.signature),
    algorithmIdentifier: identifier,
    unusedBits: 0
  }
  const issuerCertificate = new X509Certificate(issuerDer)
  if (verifiesWith(parts, algorithm, issuerCertificate.publicKey)) return

  const certs = basic.certs ?? []
  if (certs.length > MAX_RESPONSE_CERTIFICATES) throw new OcspError('responder-certificate', `${certs.length} certificates in the response (${MAX_RESPONSE_CERTIFICATES} at most)`)
  for (const cert of certs) {
    let responder: X509Certificate
    try {
      responder = new X509Certificate(Buffer.from(AsnConvert.serialize(cert)))
    } catch {
      continue
    }
    if (!verifiesWith(parts, algorithm, responder.publicKey)) continue
    // The response is this certificate's: it counts only as the issuer's delegate.
    checkDelegate(responder, issuerCertificate, now, skewMs)
    return
  }
  throw new OcspError('signature', 'the signature verifies neither with the issuer\'s key nor with a responder certificate in the response')
}

function checkDelegate (responder: X509Certificate, issuerCertificate: X509Certificate, now: number, skewMs: number): void {
  const name = responder.subject.replace(/\n/g, ', ')
  if (!responder.checkIssued(issuerCertificate) || !responder.verify(issuerCertificate.publicKey)) {
    throw new OcspError('responder-certificate', `signed by "${name}", which the issuer did not sign: another CA's responder cannot answer for this one`)
  }
  if (!(responder.keyUsage ?? []).includes(OCSP_SIGNING)) {
    throw new OcspError('responder-certificate', `signed by "${name}", which the issuer did not delegate OCSP signing to (no id-kp-OCSPSigning extended key usage)`)
  }
  const notBefore = Date.parse(responder.validFrom)
  const notAfter = Date.parse(responder.validTo)
  if (notBefore > now + skewMs || notAfter < now - skewMs) {
    throw new OcspError('responder-certificate', `signed by "${name}", which is not valid now (${new Date(notBefore).toISOString()} to ${new Date(notAfter).toISOString()})`)
  }
}

function checkNonce (extensions: readonly Extension[] | undefined, nonce: Uint8Array): void {
  const echoed = extensions?.find(extension => extension.extnID === OCSP_NONCE)
  if (echoed === undefined) throw new OcspError('nonce', 'the request\'s nonce is not in the response')
  const sent = Buffer.from(AsnConvert.serialize(new Nonce(nonce)))
  if (!sent.equals(Buffer.from(echoed.extnValue.buffer))) throw new OcspError('nonce', 'the response carries another nonce than the request\'s')
}

function hex (bytes: ArrayBuffer): string {
  return Buffer.from(bytes).toString('hex')
}
