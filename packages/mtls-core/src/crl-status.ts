// A certificate's status in a CRL fetched from its distribution point: the CRL judged as OpenSSL would judge it for
// that certificate (crl-choice: usable, in scope, signed by the issuer in an allowed algorithm, current), or stricter.
// Used beside OpenSSL's verdict, never instead of it: a CRL here can only add a refusal.
import { X509Certificate } from 'node:crypto'
import { KEY_USAGE, canonicalName, readCertificateFields, readCrlFields, type CrlFields } from './der.js'
import { MtlsCoreError, type CrlStatusErrorCode } from './errors.js'
import { UndecidableScope, crlSignedWith, crlUsable, inScope, type LoadedCrl } from './crl-choice.js'
import { akidMismatch, type ChainEntry } from './issuer-match.js'
import { readPemBlocks } from './pem.js'

/** Which check of a CRL failed. */
export type CrlCheck = 'malformed' | 'issuer' | 'key-usage' | 'signature' | 'unusable' | 'delta' | 'critical-extension' | 'scope' | 'not-yet-valid' | 'expired'

/** What `crlStatus` found wrong with a CRL: `check` names the check, the message says how it failed. */
export class CrlStatusError extends MtlsCoreError<CrlStatusErrorCode> {
  static override readonly kind: string = 'CrlStatusError'
  readonly check: CrlCheck

  constructor (check: CrlCheck, message: string, options: { cause?: unknown } = {}) {
    super('ERR_MTLS_CRL_INVALID', `CRL refused: ${message}`, options)
    this.check = check
  }
}

/** A CRL read once, to judge many certificates of one issuer by. */
export interface ReadCrl extends LoadedCrl {
  readonly der: Buffer
}

/** A certificate's status, as a CRL its issuer signed gives it. */
export interface CrlStatus {
  readonly status: 'good' | 'revoked'
  readonly thisUpdate: Date
  /** `null` for a CRL without one (it never goes stale: RFC 5280 requires it, OpenSSL does not). */
  readonly nextUpdate: Date | null
}

export interface CrlStatusOptions {
  /** The certificate asked about, DER. */
  certificate: Uint8Array
  /** Its issuer's certificate, DER: the CRL must be signed with its key. */
  issuer: Uint8Array
  /** The time to judge at, in milliseconds since the epoch. Default: now. */
  now?: number
  /** Clock skew allowed on thisUpdate and nextUpdate, in milliseconds. Default: 5 minutes. */
  skewMs?: number
}

const DEFAULT_SKEW_MS = 5 * 60_000

/** Reads a CRL as a distribution point serves it: DER (RFC 5280), or one PEM block. Throws CrlStatusError `malformed`. */
export function readCrl (body: Uint8Array): ReadCrl {
  let der = Buffer.from(body.buffer, body.byteOffset, body.byteLength)
  if (der[0] !== 0x30) {
    const blocks = readPemBlocks(der.toString('latin1')).filter(block => block.label === 'X509 CRL')
    if (blocks.length !== 1) throw new CrlStatusError('malformed', `neither DER nor one PEM CRL block (${blocks.length} blocks found)`)
    der = Buffer.from((blocks[0] as { der: Uint8Array }).der)
  }
  let fields: CrlFields
  try {
    fields = readCrlFields(der)
  } catch (err) {
    throw new CrlStatusError('malformed', (err as Error).message, { cause: err })
  }
  return Object.freeze({ der, fields, issuerName: canonicalName(der, fields.issuer) })
}

/**
 * The status of `certificate` in `crl`, which must be its issuer's complete CRL covering it: issued under the issuer's
 * name and key identifier, signed with its key (an issuer whose key usage leaves out cRLSign signs none), usable by
 * OpenSSL (no indirect CRL, no reason scope), not a delta CRL, no critical extension OpenSSL does not handle, its
 * scope covering the certificate, and current within `skewMs`. Throws CrlStatusError saying which check failed.
 */
export function crlStatus (crl: ReadCrl, options: CrlStatusOptions): CrlStatus {
  const now = options.now ?? Date.now()
  const skewMs = options.skewMs ?? DEFAULT_SKEW_MS
  const certificate = entryOf(options.certificate, 'certificate')
  const issuer = entryOf(options.issuer, 'issuer')
  const { fields } = crl
  if (crl.issuerName !== issuer.subjectName || certificate.issuerName !== issuer.subjectName) {
    throw new CrlStatusError('issuer', 'its issuer is not the certificate\'s issuer')
  }
  if (akidMismatch(fields.authorityKeyIdentifier, crl.der, issuer) !== null) throw new CrlStatusError('issuer', 'its authority key identifier does not fit the issuer')
  if (issuer.fields.keyUsage !== null && (issuer.fields.keyUsage & KEY_USAGE.cRLSign) === 0) {
    throw new CrlStatusError('key-usage', 'the issuer\'s key usage does not allow cRLSign')
  }
  if (!signedBy(crl, options.issuer)) throw new CrlStatusError('signature', 'its signature is not the issuer\'s (or not in an allowed algorithm)')
  if (!crlUsable(fields)) throw new CrlStatusError('unusable', 'an indirect CRL, or one scoped by reasons or to several kinds of certificate')
  if (fields.deltaCrlIndicator) throw new CrlStatusError('delta', 'a delta CRL is not a complete list')
  if (fields.unhandledCritical) throw new CrlStatusError('critical-extension', 'it has a critical extension OpenSSL does not handle')
  let covered: boolean
  try {
    covered = inScope(crl, certificate)
  } catch (err) {
    if (!(err instanceof UndecidableScope)) throw err
    throw new CrlStatusError('scope', `its scope cannot be judged here (${err.message})`, { cause: err })
  }
  if (!covered) throw new CrlStatusError('scope', 'its issuing distribution point does not cover the certificate')
  if (fields.thisUpdate.getTime() > now + skewMs) throw new CrlStatusError('not-yet-valid', `its thisUpdate is ${fields.thisUpdate.toISOString()}`)
  if (fields.nextUpdate !== null && fields.nextUpdate.getTime() < now - skewMs) throw new CrlStatusError('expired', `its nextUpdate was ${fields.nextUpdate.toISOString()}`)
  const status = fields.revoked.has(certificate.fields.serialNumber) ? 'revoked' : 'good'
  return Object.freeze({ status, thisUpdate: fields.thisUpdate, nextUpdate: fields.nextUpdate })
}

// A CRL's signature is checked once per issuer: a large CRL is hashed whole, and judges many certificates.
const signatures = new WeakMap<ReadCrl, Map<string, boolean>>()

function signedBy (crl: ReadCrl, issuer: Uint8Array): boolean {
  let byIssuer = signatures.get(crl)
  if (byIssuer === undefined) signatures.set(crl, byIssuer = new Map())
  const key = Buffer.from(issuer.buffer, issuer.byteOffset, issuer.byteLength).toString('latin1')
  let signed = byIssuer.get(key)
  if (signed === undefined) byIssuer.set(key, signed = crlSignedWith(crl, new X509Certificate(issuer).publicKey))
  return signed
}

function entryOf (der: Uint8Array, what: string): ChainEntry {
  try {
    const fields = readCertificateFields(der)
    return { der, fields, subjectName: canonicalName(der, fields.subject), issuerName: canonicalName(der, fields.issuer) }
  } catch (err) {
    throw new CrlStatusError('malformed', `the ${what} is not a certificate (${(err as Error).message})`, { cause: err })
  }
}
