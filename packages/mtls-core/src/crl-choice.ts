// Which CRL OpenSSL judges a certificate of a chain by, when several name its issuer (x509_vfy.c get_crl_sk and
// get_crl_score, with CRL_CHECK_ALL and without extended CRL support, as Node and `openssl verify -crl_check_all`
// run it): each CRL gets a score (no unhandled critical extension, the certificate within its scope, current, issued
// by a certificate of the chain that its authority key identifier fits), the highest score wins and, among equals,
// the newest. Indirect CRLs, CRLs scoped by reason and CRLs with an invalid issuing distribution point score nothing;
// so do delta CRLs, since OpenSSL 3.1 (3.0 takes a delta CRL for a complete one: ChainVerifier asks both ways). A certificate's CRL distribution points and a CRL's issuing distribution point match when they share
// a name; so shards of one issuer each cover their own certificates, and a newer shard does not hide an older one.
import type { KeyObject } from 'node:crypto'
import { canonicalName, tlv, type ByteRange, type CrlFields, type DistributionPoint } from './der.js'
import { akidMismatch, type ChainEntry } from './issuer-match.js'
import { signatureAlgorithm, verifiesWith } from './signature-allowlist.js'

/** A CRL as ChainVerifier keeps it. */
export interface LoadedCrl {
  readonly der: Uint8Array
  readonly fields: CrlFields
  /** The issuer name in canonical form. */
  readonly issuerName: string
}

export const CRL_SCORE = Object.freeze({ noCritical: 0x100, scope: 0x080, time: 0x040, issuerName: 0x020, issuerCertificate: 0x018, samePath: 0x008, akid: 0x004 })

/** A CRL OpenSSL may choose for a certificate, its score, and the certificate of the chain whose key must have signed it. */
export interface CrlChoice<C extends LoadedCrl, E extends ChainEntry> {
  readonly crl: C
  readonly score: number
  readonly issuer: E
}

/** Thrown when a name comparison OpenSSL would make cannot be made here (a relative or unusual distribution point name). */
export class UndecidableScope extends Error {}

/**
 * The CRLs (of `crls`, all naming the certificate's issuer) OpenSSL may choose for `chain[index]`: the one with the
 * best score, newest among equal scores; several when they tie in score and thisUpdate (OpenSSL then takes whichever
 * it meets first). Empty when none scores at all. `deltasAsComplete`: score delta CRLs as complete ones, as OpenSSL 3.0 does.
 */
export function chooseCrls<C extends LoadedCrl, E extends ChainEntry> (crls: readonly C[], chain: readonly E[], index: number, now: number, deltasAsComplete: boolean): Array<CrlChoice<C, E>> {
  let best: Array<CrlChoice<C, E>> = []
  for (const crl of crls) {
    if (crl.fields.deltaCrlIndicator && !deltasAsComplete) continue
    const choice = score(crl, chain, index, now)
    if (choice === null) continue
    const leader = best[0]
    const newer = leader === undefined ? 1 : Math.sign(crl.fields.thisUpdate.getTime() - leader.crl.fields.thisUpdate.getTime())
    if (leader === undefined || choice.score > leader.score || (choice.score === leader.score && newer > 0)) best = [choice]
    else if (choice.score === leader.score && newer === 0) best.push(choice)
  }
  return best
}

/**
 * Whether OpenSSL (without extended CRL support, as Node runs it) can use the CRL at all: not an indirect CRL, not
 * one scoped by reasons, not one whose issuing distribution point claims more than one kind of certificate.
 */
export function crlUsable (fields: CrlFields): boolean {
  const idp = fields.issuingDistributionPoint
  return idp === null || !(Number(idp.onlyUserCerts) + Number(idp.onlyCaCerts) + Number(idp.onlyAttributeCerts) > 1 || idp.indirectCrl || idp.onlySomeReasons)
}

/**
 * Whether `publicKey` made the CRL's signature, in an algorithm of the allowlist, with the same algorithm identifier
 * inside the signed part and out, and no unused bits in the signature: what OpenSSL takes, or stricter.
 */
export function crlSignedWith (crl: LoadedCrl, publicKey: KeyObject): boolean {
  const { fields, der } = crl
  const algorithm = signatureAlgorithm(fields.algorithmIdentifier)
  if ('refused' in algorithm || fields.unusedBits !== 0) return false
  if (Buffer.compare(fields.algorithmIdentifier, der.subarray(fields.innerAlgorithm.start, fields.innerAlgorithm.end)) !== 0) return false
  return verifiesWith(fields, algorithm, publicKey)
}

/** Whether the CRL's times hold at `now` (OpenSSL's check_crl_time). */
export function crlCurrent (fields: CrlFields, now: number): boolean {
  return fields.thisUpdate.getTime() <= now && (fields.nextUpdate === null || fields.nextUpdate.getTime() >= now)
}

function score<C extends LoadedCrl, E extends ChainEntry> (crl: C, chain: readonly E[], index: number, now: number): CrlChoice<C, E> | null {
  const cert = chain[index] as E
  const { fields } = crl
  if (!crlUsable(fields)) return null
  // Every CRL given names the certificate's issuer (ChainVerifier keeps them by issuer name).
  let value = CRL_SCORE.issuerName
  if (!fields.unhandledCritical) value |= CRL_SCORE.noCritical
  if (crlCurrent(fields, now)) value |= CRL_SCORE.time
  // The CRL's issuer: the certificate's own issuer (the next in the chain; a root is its own), else one higher up with its name.
  const last = chain.length - 1
  const first = index === last ? last : index + 1
  let issuer: E | null = null
  for (let i = first; i <= last && issuer === null; i++) {
    const candidate = chain[i] as E
    if (candidate.subjectName === crl.issuerName && akidMismatch(fields.authorityKeyIdentifier, crl.der, candidate) === null) {
      issuer = candidate
      value |= CRL_SCORE.akid | (i === first ? CRL_SCORE.issuerCertificate : CRL_SCORE.samePath)
    }
  }
  if (issuer === null) return null
  if (inScope(crl, cert)) value |= CRL_SCORE.scope
  return { crl, score: value, issuer }
}

/**
 * Whether a CRL's scope covers a certificate (OpenSSL's crl_crldp_check): the certificate's kind against the CRL's
 * "only" flags, then a distribution point of the certificate whose name matches the CRL's; a CRL without a
 * distribution point name covers every certificate. Throws UndecidableScope where the comparison cannot be made here.
 */
export function inScope (crl: LoadedCrl, cert: ChainEntry): boolean {
  const points = cert.fields.crlDistributionPoints ?? []
  // A point's reasons narrow what any CRL covers, and a cRLIssuer asks for indirect CRLs: neither is evaluated here.
  if (points.some(point => point.crlIssuer || point.reasons)) throw new UndecidableScope('a CRL distribution point with cRLIssuer or reasons')
  const idp = crl.fields.issuingDistributionPoint
  if (idp?.onlyAttributeCerts === true) return false
  if (cert.fields.isCa ? idp?.onlyUserCerts === true : idp?.onlyCaCerts === true) return false
  if (idp === null || (idp.fullName === null && !idp.relativeName)) return true
  return points.some(point => pointsMatch(cert, point, crl, idp))
}

// OpenSSL's idp_check_dp: full names match when they share a GeneralName. (A distribution point without a name, which
// matches any, has reasons or a cRLIssuer: inScope has refused it.)
function pointsMatch (cert: ChainEntry, point: DistributionPoint, crl: LoadedCrl, idp: Pick<DistributionPoint, 'fullName' | 'relativeName'>): boolean {
  if (point.relativeName || idp.relativeName) throw new UndecidableScope('a distribution point name relative to the CRL issuer')
  // Both are full names now (a point has a name: inScope refused those without, which have reasons or a cRLIssuer).
  return (point.fullName as readonly ByteRange[]).some(a => (idp.fullName as readonly ByteRange[]).some(b => generalNamesEqual(cert.der, a, crl.der, b)))
}

// GENERAL_NAME_cmp: a directoryName as a Name (canonically), URIs, DNS names, e-mail addresses, IP addresses and
// registered IDs byte for byte; the other kinds are not compared here.
function generalNamesEqual (aDer: Uint8Array, a: ByteRange, bDer: Uint8Array, b: ByteRange): boolean {
  const aTag = aDer[a.start] as number
  const bTag = bDer[b.start] as number
  for (const tag of [aTag, bTag]) if (![0x81, 0x82, 0x86, 0x87, 0x88, 0xa4].includes(tag)) throw new UndecidableScope(`a distribution point GeneralName of tag 0x${tag.toString(16)}`)
  if (aTag !== bTag) return false
  if (aTag === 0xa4) return canonicalName(aDer, innerName(aDer, a)) === canonicalName(bDer, innerName(bDer, b))
  return Buffer.compare(aDer.subarray(a.start, a.end), bDer.subarray(b.start, b.end)) === 0
}

// The Name inside a directoryName [4] EXPLICIT: the contents of its SEQUENCE.
function innerName (der: Uint8Array, range: ByteRange): ByteRange {
  const directoryName = tlv(der, range.start, range.end)
  const name = tlv(der, directoryName.start, directoryName.end, 0x30)
  return { start: name.start, end: name.end }
}
