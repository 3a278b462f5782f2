// Revocation of client certificates by the server itself: on the first handshake of each certificate (by SHA-256
// fingerprint, for the leaf and each intermediate below the root), ask the OCSP responder its authorityInfoAccess
// names (mtls-core's verifyOcspResponse: signed by the issuer or its delegate) and/or read the CRL its distribution
// point serves (mtls-core's crlStatus: signed by the issuer, in scope, current), and cache the answer until nextUpdate.
// One lookup per certificate at a time, shared by every connection that waits for it. Revocation only adds refusals
// to OpenSSL's verdict: a connection it cannot judge is refused only with failMode 'closed'.
//
// CRLs from distribution points are kept here, not handed to OpenSSL: Node's `crl` option has OpenSSL require a CRL
// for every certificate of every chain (CRL_CHECK_ALL), so one fetched CRL would refuse each chain whose issuers
// publish none, and a new issuer's first handshake before its CRL could be fetched. Each CRL in use is fetched again
// on its own schedule; a new one that revokes a certificate of an open connection refuses that connection, as a
// reloaded CRL file does.
import { createHash } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import type { ChainCertificate } from 'mtls-core/internal'
import { codeOf, describeThrown, readCertificateFields, snapshotOptions, unknownOption } from 'mtls-core/internal'
import { crlStatus, fetchCrl, fetchOcspResponse, ocspRequest, readCrl, revocationPointsOf, verifyOcspResponse, type ReadCrl } from 'mtls-core/ocsp'
import type { ConnectionRecord } from './connection-records.js'
import { codes, revocationCodes } from './errors.js'

export interface RevocationOptions {
  /** Ask each client certificate's OCSP responder (authorityInfoAccess) on its first handshake. */
  ocsp?: boolean
  /** Read the CRL each client certificate's distribution point serves (cRLDistributionPoints); after OCSP when both are on. */
  crlDistributionPoints?: boolean
  /** `'closed'` (default): a certificate whose status cannot be learnt is refused. `'open'`: it is let through (and logged). */
  failMode?: 'closed' | 'open'
  /** Milliseconds for one OCSP exchange or CRL download, connect to last byte. Default: 5000. */
  timeoutMs?: number
  /** Distinct responder and distribution point URLs asked at most; a certificate naming another one cannot be checked. Default: 16. */
  maxResponders?: number
  /** Fetch from `https:` responders and distribution points too (both are specified over http: their answers are signed). Default: `false`. */
  allowHttps?: boolean
  /** Largest CRL downloaded, in bytes. Default: 4 MiB. */
  maxCrlBytes?: number
  /** A CRL in use is downloaded again after this many milliseconds, or at three quarters of its validity if sooner. Default: 1 hour. */
  crlRefreshMs?: number
}

/** What `status().revocation.crl.distributionPoints` shows of a CRL in use. */
export interface CrlInUse {
  readonly url: string
  readonly thisUpdate: Date
  readonly nextUpdate: Date | null
  /** Certificates it lists. */
  readonly revoked: number
  readonly fetchedAt: Date
  /** When it is downloaded again. */
  readonly nextFetchAt: Date
}

/** The last failure to learn a status, until a lookup of that kind succeeds. */
export type RevocationError = { readonly message: string, readonly code: string, readonly url: string | null, readonly at: Date } | null

/** What `status().revocation` shows. */
export interface RevocationStatus {
  readonly ocsp: {
    /** Certificates whose answer is cached. */
    readonly cached: number
    /** Lookups under way. */
    readonly pending: number
    /** Distinct responders asked so far. */
    readonly responders: number
    /** The last failure to learn a status (unreachable responder, refused answer, ...), until a lookup succeeds. */
    readonly lastError: RevocationError
  }
  /** Lookups of a certificate's status (one per certificate not cached, shared by the connections that wait for it), by result: `error` when none could be learnt. */
  readonly lookups: { readonly good: number, readonly revoked: number, readonly unknown: number, readonly error: number }
  /** With `crlDistributionPoints`, else `null`. */
  readonly crl: {
    /** The CRLs in use, one per distribution point. */
    readonly distributionPoints: readonly CrlInUse[]
    /** The last failure to get or use a CRL, until a download succeeds. */
    readonly lastError: RevocationError
  } | null
}

/** Why revocation refuses a connection: `CERT_REVOKED` (as OpenSSL names a certificate a CRL lists), or no status learnt with failMode 'closed'. */
export interface RevocationVerdict {
  readonly code: 'CERT_REVOKED' | typeof revocationCodes.unknown
  readonly message: string
}

const KEYS = ['ocsp', 'crlDistributionPoints', 'failMode', 'timeoutMs', 'maxResponders', 'allowHttps', 'maxCrlBytes', 'crlRefreshMs'] as const satisfies ReadonlyArray<keyof RevocationOptions>
const MAX_CACHED = 10_000
const MIN_BACKOFF_MS = 1000
const MAX_BACKOFF_MS = 60_000
const MAX_RESPONSE_BYTES = 65_536
const MIN_CRL_REFRESH_MS = 1000
// Distribution points of one certificate tried at most (each an alternative source of the same CRL).
const MAX_POINTS_PER_CERTIFICATE = 4
// As crlStatus allows: a CRL is stale this long after its nextUpdate.
const CRL_SKEW_MS = 5 * 60_000
// A CRL nobody has looked up for this long is dropped rather than downloaded again.
const CRL_IDLE_MS = 24 * 3_600_000

// A cached answer: `none` for a certificate that names no responder, `unusable` for one whose responder is never asked
// (a URL scheme not fetched); both last as long as the certificate, which cannot change. `crl`: the distribution point
// an answer came from, and what it was judged for, to judge again when that CRL is downloaded again.
interface Answer {
  readonly status: 'good' | 'revoked' | 'unknown' | 'none' | 'unusable'
  readonly until: number
  readonly message: string
  readonly crl?: { readonly url: string, readonly certificate: Buffer, readonly issuer: Buffer, readonly notAfter: number }
}

// A CRL downloaded from a distribution point, and when to download it again.
interface CrlDocument {
  crl: ReadCrl
  /** The certificate and issuer it was first checked for: each later download must pass the same check. */
  readonly checkedFor: { readonly certificate: Buffer, readonly issuer: Buffer }
  fetchedAt: number
  nextFetchAt: number
  lastUsed: number
  timer: NodeJS.Timeout | null
  /** At its nextUpdate (and the skew), unless a newer one replaced it: it is dropped. */
  expiry: NodeJS.Timeout | null
}

/** Judges each open connection by a CRL downloaded again: its verdict, or `null` to leave it be. */
export type ConnectionJudge = (judge: (record: ConnectionRecord) => RevocationVerdict | null) => void

interface Responder {
  readonly label: string
  failures: number
  downUntil: number
  lastError: Error | null
}

class LookupError extends Error {
  readonly code: string
  readonly url: string | null
  constructor (code: string, message: string, url: string | null, cause?: unknown) {
    super(message, { cause })
    this.code = code
    this.url = url
  }
}

/** The revocation checker of one server's client certificates; made by the plugin when `revocation` is set. */
export class ClientRevocation {
  readonly #log: FastifyBaseLogger
  readonly #judgeConnections: ConnectionJudge
  readonly #ocsp: boolean
  readonly #crls: boolean
  readonly #failOpen: boolean
  readonly #timeoutMs: number
  readonly #maxResponders: number
  readonly #allowHttps: boolean
  readonly #maxCrlBytes: number
  readonly #crlRefreshMs: number
  readonly #cache = new Map<string, Answer>()
  readonly #pending = new Map<string, Promise<Answer>>()
  readonly #responders = new Map<string, Responder>()
  readonly #documents = new Map<string, CrlDocument>()
  readonly #downloads = new Map<string, Promise<ReadCrl>>()
  #lastError: RevocationError = null
  #lastCrlError: RevocationError = null
  readonly #lookups = { good: 0, revoked: 0, unknown: 0, error: 0 }
  #closed = false

  constructor (given: unknown, log: FastifyBaseLogger, judgeConnections: ConnectionJudge) {
    const options = checkOptions(given)
    this.#log = log
    this.#judgeConnections = judgeConnections
    this.#ocsp = options.ocsp === true
    this.#crls = options.crlDistributionPoints === true
    this.#failOpen = options.failMode === 'open'
    this.#timeoutMs = options.timeoutMs ?? 5000
    this.#maxResponders = options.maxResponders ?? 16
    this.#allowHttps = options.allowHttps === true
    this.#maxCrlBytes = options.maxCrlBytes ?? 4 * 1024 * 1024
    this.#crlRefreshMs = Math.max(MIN_CRL_REFRESH_MS, options.crlRefreshMs ?? 3_600_000)
  }

  /**
   * The verdict on a verified connection's certificates: at once when every one is cached (`null`: nothing against
   * it), else a promise of it, to hold the connection's requests on. The chain is the one OpenSSL verified as the
   * record knows it (a resumed session's: the one recalled, or the trust's CAs); without one, the leaf alone, whose
   * issuer is then unknown (a failure to learn its status).
   */
  check (record: ConnectionRecord): RevocationVerdict | null | Promise<RevocationVerdict | null> {
    const chain = chainOf(record)
    const now = Date.now()
    const waiting: Array<Promise<Answer>> = []
    let verdict: RevocationVerdict | null = null
    // Every certificate below the root (the last of a recorded chain: the anchor the trust holds).
    const below = chain.length > 1 ? chain.length - 1 : 1
    for (let i = 0; i < below; i++) {
      const certificate = (chain[i] as ChainCertificate).der
      const fingerprint = fingerprintOf(certificate)
      const cached = this.#cache.get(fingerprint)
      if (cached !== undefined && cached.until > now) {
        if (cached.crl !== undefined) this.#used(cached.crl.url, now)
        verdict ??= this.#verdict(cached)
        continue
      }
      if (cached !== undefined) this.#cache.delete(fingerprint)
      waiting.push(this.#lookup(fingerprint, certificate, chain[i + 1]?.der ?? null))
    }
    if (verdict?.code === 'CERT_REVOKED' || waiting.length === 0) return verdict
    return Promise.all(waiting).then(answers => {
      const verdicts = [verdict, ...answers.map(answer => this.#verdict(answer))]
      return verdicts.find(found => found?.code === 'CERT_REVOKED') ?? verdicts.find(found => found !== null) ?? null
    })
  }

  status (): RevocationStatus {
    const crl = this.#crls
      ? {
          distributionPoints: [...this.#documents].map(([url, document]) => Object.freeze({
            url,
            thisUpdate: document.crl.fields.thisUpdate,
            nextUpdate: document.crl.fields.nextUpdate,
            revoked: document.crl.fields.revoked.size,
            fetchedAt: new Date(document.fetchedAt),
            nextFetchAt: new Date(document.nextFetchAt)
          })),
          lastError: this.#lastCrlError
        }
      : null
    return { ocsp: { cached: this.#cache.size, pending: this.#pending.size, responders: this.#responders.size, lastError: this.#lastError }, lookups: { ...this.#lookups }, crl }
  }

  /** Stops downloading CRLs (the server closes). */
  close (): void {
    this.#closed = true
    for (const document of this.#documents.values()) {
      if (document.timer !== null) clearTimeout(document.timer)
      if (document.expiry !== null) clearTimeout(document.expiry)
    }
    this.#documents.clear()
  }

  #verdict (answer: Answer): RevocationVerdict | null {
    if (answer.status === 'good' || answer.status === 'none') return null
    if (answer.status === 'revoked') return { code: 'CERT_REVOKED', message: answer.message }
    return this.#failOpen ? null : { code: revocationCodes.unknown, message: answer.message }
  }

  // One lookup per certificate at a time: concurrent connections of a certificate share it.
  async #lookup (fingerprint: string, certificate: Buffer, issuer: Buffer | null): Promise<Answer> {
    const under = this.#pending.get(fingerprint)
    if (under !== undefined) return await under
    const lookup = this.#ask(fingerprint, certificate, issuer).then(answer => {
      this.#lookups[answer.until === 0 ? 'error' : answer.status === 'good' || answer.status === 'none' ? 'good' : answer.status === 'revoked' ? 'revoked' : 'unknown']++
      return answer
    }).finally(() => { this.#pending.delete(fingerprint) })
    this.#pending.set(fingerprint, lookup)
    return await lookup
  }

  // OCSP first (fresher, and one small answer), then the CRL: the first that gives good or revoked decides.
  async #ask (fingerprint: string, certificate: Buffer, issuer: Buffer | null): Promise<Answer> {
    let notAfter: number
    let points: ReturnType<typeof revocationPointsOf>
    try {
      notAfter = readCertificateFields(certificate).notAfter.getTime()
      points = revocationPointsOf(certificate)
    } catch (err) {
      return this.#noStatus(new LookupError(codeOf(err, 'ERR'), describeThrown(err), null, err), false)
    }
    const ocspUrl = this.#ocsp ? points.ocspUrls[0] ?? null : null
    // The distribution points that can be fetched, each an alternative (RFC 5280 4.2.1.13; certificates often name an
    // ldap: one beside an http: one): the first that gives a status decides. Only ldap: and the like: one not asked.
    const crlUrls = this.#crls ? points.crlDistributionPoints : []
    const fetchable = crlUrls.filter(url => this.#fetchable(url)).slice(0, MAX_POINTS_PER_CERTIFICATE)
    const crlCandidates = fetchable.length > 0 ? fetchable : crlUrls.slice(0, 1)
    if (ocspUrl === null && crlCandidates.length === 0) {
      return this.#remember(fingerprint, { status: 'none', until: notAfter, message: `no ${[this.#ocsp ? 'OCSP responder' : '', this.#crls ? 'CRL distribution point' : ''].filter(Boolean).join(' or ')} named` })
    }
    let failure: Answer | null = null
    const candidates: Array<readonly ['ocsp' | 'crl', string]> = [...(ocspUrl === null ? [] : [['ocsp', ocspUrl] as const]), ...crlCandidates.map(url => ['crl', url] as const)]
    for (const [kind, url] of candidates) {
      if (!this.#fetchable(url)) {
        failure = this.#unusable(fingerprint, kind, url, notAfter)
        continue
      }
      const answer = kind === 'ocsp' ? await this.#askOcsp(url, certificate, issuer, notAfter) : await this.#askCrl(url, certificate, issuer, notAfter)
      if (answer.status === 'good' || answer.status === 'revoked') {
        if (answer.status === 'revoked') this.#logAnswer(fingerprint, url, answer)
        return this.#remember(fingerprint, answer)
      }
      failure = answer
    }
    // Nothing decided: a responder's `unknown` (cached until its nextUpdate, as an unusable URL is), or no status.
    const undecided = failure as Answer
    if (undecided.until === 0) return undecided
    if (undecided.status === 'unknown') this.#logAnswer(fingerprint, ocspUrl, undecided)
    return this.#remember(fingerprint, undecided)
  }

  async #askOcsp (url: string, certificate: Buffer, issuer: Buffer | null, notAfter: number): Promise<Answer> {
    try {
      if (issuer === null) throw new LookupError(revocationCodes.noIssuer, 'the certificate\'s issuer is not known here (its chain is not on record): its OCSP request cannot be made', url)
      const status = await this.#fromResponder('ocsp', url, async () => {
        const request = ocspRequest(certificate, issuer)
        const der = await fetchOcspResponse(url, request.der, { timeoutMs: this.#timeoutMs, maxBytes: MAX_RESPONSE_BYTES, allowHttps: this.#allowHttps })
        return verifyOcspResponse(der, { certificate, issuer })
      })
      this.#lastError = null
      const until = status.status === 'revoked' ? notAfter : Math.min(notAfter, status.nextUpdate.getTime())
      return { status: status.status, until, message: `the OCSP responder ${url} says the certificate is ${status.status}${status.reason === undefined ? '' : ` (${status.reason})`}` }
    } catch (err) {
      return this.#noStatus(asLookupError(err, url), false)
    }
  }

  async #askCrl (url: string, certificate: Buffer, issuer: Buffer | null, notAfter: number): Promise<Answer> {
    try {
      if (issuer === null) throw new LookupError(revocationCodes.noIssuer, 'the certificate\'s issuer is not known here (its chain is not on record): its CRL cannot be checked', url)
      const document = await this.#crlAt(url, certificate, issuer)
      this.#lastCrlError = null
      return this.#crlAnswer(url, document.crl, certificate, issuer, notAfter)
    } catch (err) {
      return this.#noStatus(asLookupError(err, url), true)
    }
  }

  // The certificate judged by a CRL that verified for it: an answer until the CRL's nextUpdate (a revocation, for good).
  #crlAnswer (url: string, crl: ReadCrl, certificate: Buffer, issuer: Buffer, notAfter: number): Answer {
    const status = crlStatus(crl, { certificate, issuer })
    const until = status.status === 'revoked' ? notAfter : Math.min(notAfter, status.nextUpdate?.getTime() ?? notAfter)
    return { status: status.status, until, message: `the CRL at ${url} ${status.status === 'revoked' ? 'lists the certificate as revoked' : 'does not list the certificate'}`, crl: { url, certificate, issuer, notAfter } }
  }

  // The CRL at `url`, downloaded once for every certificate that names it (concurrent lookups share the download), kept
  // until it is downloaded again. Each certificate checks it for itself, outside the responder's backoff: a certificate
  // of another CA naming the same URL gets no status from it, and does not make the URL "down" for the CA that
  // publishes there. A CRL is kept once it checked out for one certificate; none older than the one kept is taken.
  async #crlAt (url: string, certificate: Buffer, issuer: Buffer): Promise<CrlDocument> {
    const now = Date.now()
    const kept = this.#documents.get(url)
    if (kept !== undefined && (kept.crl.fields.nextUpdate === null || kept.crl.fields.nextUpdate.getTime() > now)) {
      kept.lastUsed = now
      crlStatus(kept.crl, { certificate, issuer })
      return kept
    }
    let download = this.#downloads.get(url)
    if (download === undefined) {
      download = this.#fromResponder('crl', url, async () => readCrl(await fetchCrl(url, { timeoutMs: this.#timeoutMs, maxBytes: this.#maxCrlBytes, allowHttps: this.#allowHttps })))
        .finally(() => { this.#downloads.delete(url) })
      this.#downloads.set(url, download)
    }
    const crl = await download
    crlStatus(crl, { certificate, issuer })
    const current = this.#documents.get(url)
    if (current !== undefined && current.crl.der.equals(crl.der)) return current
    notOlder(crl, current, url)
    return this.#keep(url, crl, Date.now(), { certificate, issuer })
  }

  #keep (url: string, crl: ReadCrl, now: number, checkedFor: CrlDocument['checkedFor']): CrlDocument {
    const previous = this.#documents.get(url)
    if (previous?.timer != null) clearTimeout(previous.timer)
    if (previous?.expiry != null) clearTimeout(previous.expiry)
    const { thisUpdate, nextUpdate } = crl.fields
    const threeQuarters = nextUpdate === null ? Infinity : thisUpdate.getTime() + 0.75 * (nextUpdate.getTime() - thisUpdate.getTime())
    const nextFetchAt = Math.max(now + MIN_CRL_REFRESH_MS, Math.min(now + this.#crlRefreshMs, threeQuarters))
    const document: CrlDocument = { crl, checkedFor, fetchedAt: now, nextFetchAt, lastUsed: previous?.lastUsed ?? now, timer: null, expiry: null }
    if (!this.#closed) {
      document.timer = setTimeout(() => { this.#refresh(url, document) }, Math.min(nextFetchAt - now, 2 ** 31 - 1)).unref()
      if (nextUpdate !== null) {
        const staleIn = Math.max(0, nextUpdate.getTime() + CRL_SKEW_MS - now)
        document.expiry = setTimeout(() => { if (this.#documents.get(url) === document) this.#expire(url, document) }, Math.min(staleIn, 2 ** 31 - 1)).unref()
      }
      this.#documents.set(url, document)
    }
    return document
  }

  #used (url: string, now: number): void {
    const document = this.#documents.get(url)
    if (document !== undefined) document.lastUsed = now
  }

  // A CRL in use downloaded again on its schedule; one unused for a day is dropped. What it now says of the
  // certificates judged by it replaces their answers, and open connections of a certificate it revokes are refused.
  #refresh (url: string, document: CrlDocument): void {
    if (this.#closed || this.#documents.get(url) !== document) return
    if (Date.now() - document.lastUsed > CRL_IDLE_MS) {
      this.#documents.delete(url)
      return
    }
    this.#fromResponder('crl', url, async () => {
      const crl = readCrl(await fetchCrl(url, { timeoutMs: this.#timeoutMs, maxBytes: this.#maxCrlBytes, allowHttps: this.#allowHttps }))
      // Checked as the first one was: an answer from anyone but the issuer is no CRL; nor is an older one (a stale
      // mirror, or a replay by whoever answers for an http: URL, would take revocations back).
      crlStatus(crl, document.checkedFor)
      notOlder(crl, document, url)
      return crl
    }).then(crl => {
      if (this.#closed) return
      this.#keep(url, crl, Date.now(), document.checkedFor)
      this.#lastCrlError = null
      this.#apply(url, crl, [...this.#cache].filter(([, answer]) => answer.crl?.url === url))
    }, (err: unknown) => {
      if (this.#closed) return
      this.#noStatus(asLookupError(err, url), true)
      // The CRL in force stays until its nextUpdate (its expiry timer drops it then); meanwhile downloads are retried
      // after the responder's backoff.
      const retryAt = Math.max(Date.now() + MIN_CRL_REFRESH_MS, this.#responders.get(url)?.downUntil ?? 0)
      document.nextFetchAt = retryAt
      document.timer = setTimeout(() => { this.#refresh(url, document) }, retryAt - Date.now()).unref()
    })
  }

  // Each certificate a CRL judged is judged again by the new one; open connections of those it now revokes are refused.
  #apply (url: string, crl: ReadCrl, judged: Array<[string, Answer]>): void {
    const revoked = new Map<string, RevocationVerdict>()
    for (const [fingerprint, answer] of judged) {
      const { certificate, issuer, notAfter } = answer.crl as NonNullable<Answer['crl']>
      let next: Answer
      try {
        next = this.#crlAnswer(url, crl, certificate, issuer, notAfter)
      } catch (err) {
        next = this.#noStatus(asLookupError(err, url), true)
      }
      // A revocation is for good: no later CRL takes it back (certificateHold is not honoured here).
      if (answer.status === 'revoked') continue
      if (next.until > 0) this.#remember(fingerprint, next)
      else this.#cache.delete(fingerprint)
      if (next.status === 'revoked') {
        this.#logAnswer(fingerprint, url, next)
        revoked.set(fingerprint, { code: 'CERT_REVOKED', message: next.message })
      }
    }
    if (revoked.size === 0) return
    this.#judgeConnections(record => {
      for (const { der } of chainOf(record)) {
        const verdict = revoked.get(fingerprintOf(der))
        if (verdict !== undefined) return verdict
      }
      return null
    })
  }

  // A CRL past its nextUpdate that could not be downloaded again: dropped with the answers it gave (their next
  // connection asks again), and with failMode 'closed' the open connections it judged lose their verification.
  #expire (url: string, document: CrlDocument): void {
    if (this.#documents.get(url) === document) this.#documents.delete(url)
    if (document.timer !== null) clearTimeout(document.timer)
    if (document.expiry !== null) clearTimeout(document.expiry)
    const judged = new Set<string>()
    for (const [fingerprint, answer] of this.#cache) {
      if (answer.crl?.url !== url || answer.status === 'revoked') continue
      this.#cache.delete(fingerprint)
      judged.add(fingerprint)
    }
    this.#log.warn({ url }, `client certificate revocation: the CRL at ${url} is past its nextUpdate and no newer one could be downloaded; its certificates are ${this.#failOpen ? 'let through (failMode open)' : 'refused (failMode closed)'} until one is`)
    if (this.#failOpen || judged.size === 0) return
    const verdict: RevocationVerdict = { code: revocationCodes.unknown, message: `no revocation status: the CRL at ${url} is past its nextUpdate` }
    this.#judgeConnections(record => chainOf(record).some(({ der }) => judged.has(fingerprintOf(der))) ? verdict : null)
  }

  // Asks a responder or distribution point: at most `maxResponders` of them, each marked down for a backoff after a failure.
  async #fromResponder<T> (kind: 'ocsp' | 'crl', url: string, ask: () => Promise<T>): Promise<T> {
    const responder = this.#responder(url, kind)
    if (responder.downUntil > Date.now()) throw new LookupError(codeOf(responder.lastError, 'ERR'), `${responder.label} ${url} is down (${responder.lastError?.message ?? ''})`, url)
    let result: T
    try {
      result = await ask()
    } catch (err) {
      this.#down(url, responder, err as Error)
      throw err
    }
    this.#up(url, responder)
    return result
  }

  #fetchable (url: string): boolean {
    const scheme = URL.canParse(url) ? new URL(url).protocol : null
    return scheme === 'http:' || (scheme === 'https:' && this.#allowHttps)
  }

  #unusable (fingerprint: string, kind: 'ocsp' | 'crl', url: string, notAfter: number): Answer {
    const scheme = URL.canParse(url) ? new URL(url).protocol : null
    const message = `the certificate's ${kind === 'ocsp' ? 'OCSP responder' : 'CRL distribution point'} ${JSON.stringify(url)} is not asked: ${scheme === 'https:' ? 'https: only with revocation.allowHttps' : 'http: URLs only'}`
    this.#failed(new LookupError(revocationCodes.url, message, url), kind === 'crl')
    this.#log.warn({ fingerprint256: fingerprint, url }, `client certificate revocation: ${message}; ${this.#failOpen ? 'let through (failMode open)' : 'refused (failMode closed)'}`)
    return { status: 'unusable', until: notAfter, message }
  }

  // Not cached: the next connection asks again (a responder marked down answers at once, without a fetch).
  #noStatus (error: LookupError, crl: boolean): Answer {
    this.#failed(error, crl)
    return { status: 'unknown', until: 0, message: `no revocation status: ${error.message}` }
  }

  #logAnswer (fingerprint: string, url: string | null, answer: Answer): void {
    this.#log.warn({ fingerprint256: fingerprint, url, status: answer.status },
      `client certificate revocation: ${answer.message}: ${answer.status === 'revoked' || !this.#failOpen ? 'refused' : 'let through (failMode open)'} until ${new Date(answer.until).toISOString()}`)
  }

  #remember (fingerprint: string, answer: Answer): Answer {
    this.#cache.delete(fingerprint)
    this.#cache.set(fingerprint, answer)
    if (this.#cache.size > MAX_CACHED) this.#cache.delete(this.#cache.keys().next().value as string)
    return answer
  }

  #responder (url: string, kind: 'ocsp' | 'crl'): Responder {
    const known = this.#responders.get(url)
    if (known !== undefined) return known
    if (this.#responders.size >= this.#maxResponders) {
      throw new LookupError(revocationCodes.responderLimit, `the certificate names a responder or distribution point beyond the ${this.#maxResponders} asked already (revocation.maxResponders): ${url} is not asked`, url)
    }
    const responder: Responder = { label: kind === 'ocsp' ? 'the OCSP responder' : 'the CRL distribution point', failures: 0, downUntil: 0, lastError: null }
    this.#responders.set(url, responder)
    return responder
  }

  // One line per outage of a responder, one when it answers again; meanwhile it is asked again after a backoff.
  #down (url: string, responder: Responder, error: Error): void {
    responder.failures++
    responder.lastError = error
    responder.downUntil = Date.now() + Math.min(MAX_BACKOFF_MS, MIN_BACKOFF_MS * 2 ** (responder.failures - 1))
    if (responder.failures === 1) {
      this.#log.warn({ url, code: codeOf(error, 'ERR') }, `client certificate revocation: ${responder.label} gives no status: ${describeThrown(error)}; its certificates are ${this.#failOpen ? 'let through (failMode open)' : 'refused (failMode closed)'} until it does`)
    }
  }

  #up (url: string, responder: Responder): void {
    if (responder.failures > 0) this.#log.info({ url }, `client certificate revocation: ${responder.label} answers again after ${responder.failures} failed attempt${responder.failures === 1 ? '' : 's'}`)
    responder.failures = 0
    responder.downUntil = 0
    responder.lastError = null
  }

  #failed (error: LookupError, crl: boolean): void {
    const failure = { message: error.message, code: error.code, url: error.url, at: new Date() }
    if (crl) this.#lastCrlError = failure
    else this.#lastError = failure
  }
}

// A CRL older than the one kept for the same distribution point is refused.
function notOlder (crl: ReadCrl, kept: CrlDocument | undefined, url: string): void {
  if (kept !== undefined && crl.fields.thisUpdate.getTime() < kept.crl.fields.thisUpdate.getTime()) {
    throw new LookupError('ERR_MTLS_CRL_INVALID', `CRL refused: the CRL at ${url} (thisUpdate ${crl.fields.thisUpdate.toISOString()}) is older than the one in force (${kept.crl.fields.thisUpdate.toISOString()})`, url)
  }
}

function chainOf (record: ConnectionRecord): ReadonlyArray<Pick<ChainCertificate, 'der'>> {
  return record.chains()[0]?.certificates ?? [{ der: record.certificate as Buffer }]
}

function fingerprintOf (der: Buffer): string {
  return createHash('sha256').update(der).digest('hex')
}

function asLookupError (err: unknown, url: string | null): LookupError {
  return err instanceof LookupError ? err : new LookupError(codeOf(err, 'ERR'), describeThrown(err), url, err)
}

const SHAPE = '{ ocsp?: true, crlDistributionPoints?: true, failMode?, timeoutMs?, maxResponders?, allowHttps?, maxCrlBytes?, crlRefreshMs? }'

function checkOptions (given: unknown): RevocationOptions {
  if (typeof given !== 'object' || given === null) throw new codes.FST_MTLS_INVALID_OPTION(`revocation must be ${SHAPE}; got ${JSON.stringify(given)}`)
  const options = snapshotOptions(given as RevocationOptions)
  const unknown = unknownOption(options, KEYS, 'revocation')
  if (unknown !== null) throw new codes.FST_MTLS_INVALID_OPTION(unknown)
  for (const key of ['ocsp', 'crlDistributionPoints', 'allowHttps'] as const) {
    if (options[key] !== undefined && typeof options[key] !== 'boolean') throw new codes.FST_MTLS_INVALID_OPTION(`revocation.${key} must be true or false`)
  }
  // Nothing turned on would check nothing, silently.
  if (options.ocsp !== true && options.crlDistributionPoints !== true) throw new codes.FST_MTLS_INVALID_OPTION('revocation turns no check on: set revocation.ocsp and/or revocation.crlDistributionPoints to true')
  if (options.failMode !== undefined && options.failMode !== 'closed' && options.failMode !== 'open') throw new codes.FST_MTLS_INVALID_OPTION(`revocation.failMode must be 'closed' or 'open'; got ${JSON.stringify(options.failMode)}`)
  for (const key of ['timeoutMs', 'crlRefreshMs'] as const) {
    const value = options[key]
    if (value !== undefined && !(typeof value === 'number' && value > 0 && value <= 2 ** 31 - 1)) throw new codes.FST_MTLS_INVALID_OPTION(`revocation.${key} must be a positive number of milliseconds`)
  }
  if (options.maxResponders !== undefined && !(Number.isInteger(options.maxResponders) && options.maxResponders >= 1)) throw new codes.FST_MTLS_INVALID_OPTION('revocation.maxResponders must be a whole number, at least 1')
  if (options.maxCrlBytes !== undefined && !(Number.isInteger(options.maxCrlBytes) && options.maxCrlBytes >= 1)) throw new codes.FST_MTLS_INVALID_OPTION('revocation.maxCrlBytes must be a whole number of bytes, at least 1')
  return options
}
