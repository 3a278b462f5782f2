// Revocation of client certificates by the server itself: on the first handshake of each certificate (by SHA-256
// fingerprint, for the leaf and each intermediate below the root), ask the OCSP responder its authorityInfoAccess
// names, verify the answer (mtls-core's verifyOcspResponse: signed by the issuer or its delegate), and cache it until
// nextUpdate. One lookup per certificate at a time, shared by every connection that waits for it. Revocation only
// adds refusals to OpenSSL's verdict: a connection it cannot judge is refused only with failMode 'closed'.
import { createHash } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import type { ChainCertificate } from 'mtls-core/internal'
import { codeOf, describeThrown, readCertificateFields, snapshotOptions, unknownOption } from 'mtls-core/internal'
import { fetchOcspResponse, ocspRequest, revocationPointsOf, verifyOcspResponse } from 'mtls-core/ocsp'
import type { ConnectionRecord } from './connection-records.js'
import { codes, revocationCodes } from './errors.js'

export interface RevocationOptions {
  /** Ask each client certificate's OCSP responder (authorityInfoAccess) on its first handshake. */
  ocsp?: boolean
  /** `'closed'` (default): a certificate whose status cannot be learnt is refused. `'open'`: it is let through (and logged). */
  failMode?: 'closed' | 'open'
  /** Milliseconds for one OCSP exchange, connect to last byte. Default: 5000. */
  timeoutMs?: number
  /** Distinct responder URLs asked at most; a certificate naming another one cannot be checked. Default: 16. */
  maxResponders?: number
  /** Fetch from `https:` responders too (OCSP is specified over http: its answers are signed). Default: `false`. */
  allowHttps?: boolean
}

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
    readonly lastError: { readonly message: string, readonly code: string, readonly url: string | null, readonly at: Date } | null
  }
}

/** Why revocation refuses a connection: `CERT_REVOKED` (as OpenSSL names a certificate a CRL lists), or no status learnt with failMode 'closed'. */
export interface RevocationVerdict {
  readonly code: 'CERT_REVOKED' | typeof revocationCodes.unknown
  readonly message: string
}

const KEYS = ['ocsp', 'failMode', 'timeoutMs', 'maxResponders', 'allowHttps'] as const satisfies ReadonlyArray<keyof RevocationOptions>
const MAX_CACHED = 10_000
const MIN_BACKOFF_MS = 1000
const MAX_BACKOFF_MS = 60_000
const MAX_RESPONSE_BYTES = 65_536

// A cached answer: `none` for a certificate that names no responder, `unusable` for one whose responder is never asked
// (a URL scheme not fetched); both last as long as the certificate, which cannot change.
interface Answer {
  readonly status: 'good' | 'revoked' | 'unknown' | 'none' | 'unusable'
  readonly until: number
  readonly message: string
}

interface Responder {
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

/** The OCSP checker of one server's client certificates; made by the plugin when `revocation` is set. */
export class ClientRevocation {
  readonly #log: FastifyBaseLogger
  readonly #failOpen: boolean
  readonly #timeoutMs: number
  readonly #maxResponders: number
  readonly #allowHttps: boolean
  readonly #cache = new Map<string, Answer>()
  readonly #pending = new Map<string, Promise<Answer>>()
  readonly #responders = new Map<string, Responder>()
  #lastError: RevocationStatus['ocsp']['lastError'] = null

  constructor (given: unknown, log: FastifyBaseLogger) {
    const options = checkOptions(given)
    this.#log = log
    this.#failOpen = options.failMode === 'open'
    this.#timeoutMs = options.timeoutMs ?? 5000
    this.#maxResponders = options.maxResponders ?? 16
    this.#allowHttps = options.allowHttps === true
  }

  /**
   * The verdict on a verified connection's certificates: at once when every one is cached (`null`: nothing against
   * it), else a promise of it, to hold the connection's requests on. The chain is the one OpenSSL verified as the
   * record knows it (a resumed session's: the one recalled, or the trust's CAs); without one, the leaf alone, whose
   * issuer is then unknown (a failure to learn its status).
   */
  check (record: ConnectionRecord): RevocationVerdict | null | Promise<RevocationVerdict | null> {
    const chain: ReadonlyArray<Pick<ChainCertificate, 'der'>> = record.chains()[0]?.certificates ?? [{ der: record.certificate as Buffer }]
    const now = Date.now()
    const waiting: Array<Promise<Answer>> = []
    let verdict: RevocationVerdict | null = null
    // Every certificate below the root (the last of a recorded chain: the anchor the trust holds).
    const below = chain.length > 1 ? chain.length - 1 : 1
    for (let i = 0; i < below; i++) {
      const certificate = (chain[i] as ChainCertificate).der
      const fingerprint = createHash('sha256').update(certificate).digest('hex')
      const cached = this.#cache.get(fingerprint)
      if (cached !== undefined && cached.until > now) {
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
    return { ocsp: { cached: this.#cache.size, pending: this.#pending.size, responders: this.#responders.size, lastError: this.#lastError } }
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
    const lookup = this.#ask(fingerprint, certificate, issuer).finally(() => { this.#pending.delete(fingerprint) })
    this.#pending.set(fingerprint, lookup)
    return await lookup
  }

  async #ask (fingerprint: string, certificate: Buffer, issuer: Buffer | null): Promise<Answer> {
    let url: string | null = null
    try {
      const notAfter = readCertificateFields(certificate).notAfter.getTime()
      url = revocationPointsOf(certificate).ocspUrls[0] ?? null
      if (url === null) return this.#remember(fingerprint, { status: 'none', until: notAfter, message: 'no OCSP responder named' })
      const scheme = URL.canParse(url) ? new URL(url).protocol : null
      if (scheme !== 'http:' && !(scheme === 'https:' && this.#allowHttps)) {
        const message = `the certificate's OCSP responder ${JSON.stringify(url)} is not asked: ${scheme === 'https:' ? 'https: only with revocation.allowHttps' : 'http: URLs only'}`
        this.#failed(new LookupError(revocationCodes.url, message, url))
        this.#log.warn({ fingerprint256: fingerprint, url }, `client certificate revocation: ${message}; ${this.#failOpen ? 'let through (failMode open)' : 'refused (failMode closed)'}`)
        return this.#remember(fingerprint, { status: 'unusable', until: notAfter, message })
      }
      if (issuer === null) throw new LookupError(revocationCodes.noIssuer, 'the certificate\'s issuer is not known here (its chain is not on record): its OCSP request cannot be made', url)
      const responder = this.#responder(url)
      if (responder.downUntil > Date.now()) throw new LookupError(codeOf(responder.lastError, 'ERR'), `the OCSP responder ${url} is down (${responder.lastError?.message ?? ''})`, url)
      let answer: Answer
      try {
        const request = ocspRequest(certificate, issuer)
        const der = await fetchOcspResponse(url, request.der, { timeoutMs: this.#timeoutMs, maxBytes: MAX_RESPONSE_BYTES, allowHttps: this.#allowHttps })
        const status = verifyOcspResponse(der, { certificate, issuer })
        const until = status.status === 'revoked' ? notAfter : Math.min(notAfter, status.nextUpdate.getTime())
        answer = { status: status.status, until, message: `the OCSP responder ${url} says the certificate is ${status.status}${status.reason === undefined ? '' : ` (${status.reason})`}` }
      } catch (err) {
        this.#down(url, responder, err as Error)
        throw new LookupError(codeOf(err, 'ERR'), describeThrown(err), url, err)
      }
      this.#up(url, responder)
      if (answer.status !== 'good') {
        this.#log.warn({ fingerprint256: fingerprint, url, status: answer.status }, `client certificate revocation: ${answer.message}: ${answer.status === 'revoked' || !this.#failOpen ? 'refused' : 'let through (failMode open)'} until ${new Date(answer.until).toISOString()}`)
      }
      return this.#remember(fingerprint, answer)
    } catch (err) {
      // Not cached: the next connection asks again (a responder marked down answers at once, without a fetch).
      const error = err instanceof LookupError ? err : new LookupError(codeOf(err, 'ERR'), describeThrown(err), url, err)
      this.#failed(error)
      return { status: 'unknown', until: 0, message: `no revocation status: ${error.message}` }
    }
  }

  #remember (fingerprint: string, answer: Answer): Answer {
    this.#cache.delete(fingerprint)
    this.#cache.set(fingerprint, answer)
    if (this.#cache.size > MAX_CACHED) this.#cache.delete(this.#cache.keys().next().value as string)
    return answer
  }

  #responder (url: string): Responder {
    const known = this.#responders.get(url)
    if (known !== undefined) return known
    if (this.#responders.size >= this.#maxResponders) {
      throw new LookupError(revocationCodes.responderLimit, `the certificate names an OCSP responder beyond the ${this.#maxResponders} asked already (revocation.maxResponders): ${url} is not asked`, url)
    }
    const responder: Responder = { failures: 0, downUntil: 0, lastError: null }
    this.#responders.set(url, responder)
    return responder
  }

  // One line per outage of a responder, one when it answers again; meanwhile it is asked again after a backoff.
  #down (url: string, responder: Responder, error: Error): void {
    responder.failures++
    responder.lastError = error
    responder.downUntil = Date.now() + Math.min(MAX_BACKOFF_MS, MIN_BACKOFF_MS * 2 ** (responder.failures - 1))
    if (responder.failures === 1) {
      this.#log.warn({ url, code: codeOf(error, 'ERR') }, `client certificate revocation: the OCSP responder gives no status: ${describeThrown(error)}; its certificates are ${this.#failOpen ? 'let through (failMode open)' : 'refused (failMode closed)'} until it does`)
    }
  }

  #up (url: string, responder: Responder): void {
    if (responder.failures > 0) this.#log.info({ url }, `client certificate revocation: the OCSP responder answers again after ${responder.failures} failed attempt${responder.failures === 1 ? '' : 's'}`)
    responder.failures = 0
    responder.downUntil = 0
    responder.lastError = null
    this.#lastError = null
  }

  #failed (error: LookupError): void {
    this.#lastError = { message: error.message, code: error.code, url: error.url, at: new Date() }
  }
}

function checkOptions (given: unknown): RevocationOptions {
  if (typeof given !== 'object' || given === null) throw new codes.FST_MTLS_INVALID_OPTION(`revocation must be { ocsp: true, failMode?, timeoutMs?, maxResponders?, allowHttps? }; got ${JSON.stringify(given)}`)
  const options = snapshotOptions(given as RevocationOptions)
  const unknown = unknownOption(options, KEYS, 'revocation')
  if (unknown !== null) throw new codes.FST_MTLS_INVALID_OPTION(unknown)
  if (options.ocsp !== undefined && typeof options.ocsp !== 'boolean') throw new codes.FST_MTLS_INVALID_OPTION('revocation.ocsp must be true or false')
  // Nothing turned on would check nothing, silently.
  if (options.ocsp !== true) throw new codes.FST_MTLS_INVALID_OPTION('revocation turns no check on: set revocation.ocsp to true')
  if (options.failMode !== undefined && options.failMode !== 'closed' && options.failMode !== 'open') throw new codes.FST_MTLS_INVALID_OPTION(`revocation.failMode must be 'closed' or 'open'; got ${JSON.stringify(options.failMode)}`)
  if (options.timeoutMs !== undefined && !(typeof options.timeoutMs === 'number' && options.timeoutMs > 0 && options.timeoutMs <= 2 ** 31 - 1)) throw new codes.FST_MTLS_INVALID_OPTION('revocation.timeoutMs must be a positive number of milliseconds')
  if (options.maxResponders !== undefined && !(Number.isInteger(options.maxResponders) && options.maxResponders >= 1)) throw new codes.FST_MTLS_INVALID_OPTION('revocation.maxResponders must be a whole number, at least 1')
  if (options.allowHttps !== undefined && typeof options.allowHttps !== 'boolean') throw new codes.FST_MTLS_INVALID_OPTION('revocation.allowHttps must be true or false')
  return options
}
