// OCSP stapling of the server's own certificate: fetch a response from the certificate's responder, verify it
// (mtls-core's verifyOcspResponse), hand it to Node's `OCSPRequest` event, refresh it before nextUpdate with backoff,
// and start again when the certificate rotates. No staple is served rather than a stale, revoked or wrong one.
import { AsyncLocalStorage } from 'node:async_hooks'
import { X509Certificate } from 'node:crypto'
import type { Server as TlsServer } from 'node:tls'
import type { FastifyBaseLogger } from 'fastify'
import type { Material, MaterialSource, OcspStatus } from 'mtls-core'
import { codeOf, describeThrown, readPemBlocks, snapshotOptions, unknownOption } from 'mtls-core/internal'
import { fetchOcspResponse, ocspRequest, ocspUrlOf, verifyOcspResponse } from 'mtls-core/ocsp'
import { codes } from './errors.js'

export interface OcspStaplingOptions {
  /** The responder to ask. Default: the OCSP URL in the certificate's authorityInfoAccess. */
  url?: string
  /** Fetch a new response this many ms before nextUpdate. Default: half of the response's validity (thisUpdate to nextUpdate). */
  refreshBefore?: number
  /** `'closed'` (default): `ready()` fails without a first good staple and `healthCheck()` is false while none is served. `'open'`: neither. */
  failMode?: 'closed' | 'open'
  /** Milliseconds for one fetch. Default: 5000. */
  timeoutMs?: number
}

/** What `status().ocsp` shows. */
export interface OcspStapleStatus {
  /** The status of the response stapled now; `null` when none is (not yet, or the last one went stale). */
  readonly status: OcspStatus['status'] | null
  readonly thisUpdate: Date | null
  readonly nextUpdate: Date | null
  /** The responder asked. */
  readonly url: string | null
  /** When the next fetch is due. */
  readonly nextFetchAt: Date | null
  /** The last failure, until a fetch succeeds: message and code. */
  readonly lastError: { readonly message: string, readonly code: string, readonly at: Date } | null
}

/**
 * The staple's state, as the metrics report it: `'good'` while a good response is stapled; `'revoked'` or `'unknown'`
 * while none is because the responder's latest answer for the certificate said so; `'none'` while none is otherwise
 * (not fetched yet, fetches failing, or the last one past its nextUpdate).
 */
export interface StapleState {
  readonly status: OcspStatus['status'] | 'none'
  /** The stapled response's nextUpdate; `null` while none is stapled. */
  readonly nextUpdate: Date | null
}

const KEYS = ['url', 'refreshBefore', 'failMode', 'timeoutMs'] as const satisfies ReadonlyArray<keyof OcspStaplingOptions>
const MIN_BACKOFF_MS = 1000
const MAX_BACKOFF_MS = 5 * 60_000
// A staple is served until nextUpdate and not a moment after: the clients' clocks judge it, not ours.
const SKEW_MS = 0

/** The stapler of one server; made by the plugin when `ocspStapling` is on. */
export class OcspStapler {
  readonly #server: TlsServer
  readonly #source: MaterialSource
  readonly #log: FastifyBaseLogger
  readonly #options: Required<Omit<OcspStaplingOptions, 'url' | 'refreshBefore'>> & Pick<OcspStaplingOptions, 'url' | 'refreshBefore'>
  #leaf: Buffer | null = null
  #issuer: Buffer | null = null
  #url: string | null = null
  #staple: Staple | null = null
  // The certificate in force before the last rotation, and its staple: connections accepted before it still serve it.
  #previous: { leaf: Buffer, staple: Staple | null } | null = null
  #pending: Promise<void> | null = null
  #timer: NodeJS.Timeout | null = null
  #failures = 0
  #nextFetchAt: Date | null = null
  // The responder's latest answer for the current certificate (verified), whatever was stapled of it.
  #answered: OcspStatus['status'] | null = null
  #lastError: OcspStapleStatus['lastError'] = null
  #closed = false
  readonly #onOcspRequest: (certificate: Buffer, issuer: Buffer | null, callback: (err: Error | null, response?: Buffer | null) => void) => void
  // Node names to an OCSPRequest listener the certificate of the server's secure context at that moment, not the one
  // the connection serves: a connection accepted before a rotation whose ClientHello comes after it serves the old
  // certificate, and was stapled the new one's response (test/security/ocsp-staple-rotation-race.test.ts). So each
  // connection carries the certificate in force when it was accepted, into the async context of its handshake.
  readonly #acceptedWith = new AsyncLocalStorage<Buffer>()
  readonly #onConnection = (): void => { if (this.#leaf !== null) this.#acceptedWith.enterWith(this.#leaf) }

  readonly #onApply = (material: Material): void => { this.use(material).catch(() => {}) }

  constructor (server: TlsServer, source: MaterialSource, given: unknown, log: FastifyBaseLogger) {
    const options = checkOptions(given)
    this.#server = server
    this.#source = source
    this.#log = log
    this.#options = { failMode: 'closed', timeoutMs: 5000, ...options }
    this.#onOcspRequest = (certificate, _issuer, callback) => {
      const accepted = this.#acceptedWith.getStore()
      // Node named the server's current certificate: the connection serves the one it was accepted with. (Any other is
      // an SNI context's, which Node names rightly, and is stapled nothing.)
      const served = accepted !== undefined && this.#leaf?.equals(certificate) === true ? accepted : certificate
      // Without a staple in force (a rotation's first handshakes), a handshake waits for the fetch under way, bounded by its timeout.
      const answer = (): void => { callback(null, this.#stapleFor(served)) }
      if (this.#pending !== null && this.#current() === null && this.#leaf?.equals(served) === true) this.#pending.then(answer, answer)
      else answer()
    }
    // Before Node's own listener, which makes the connection's TLS socket (and so the context of its handshake).
    server.prependListener('connection', this.#onConnection)
    server.on('OCSPRequest', this.#onOcspRequest)
  }

  /** Fetches the first staple and follows rotations; with failMode 'closed', throws FST_MTLS_OCSP_UNAVAILABLE when the first fetch gives no good staple. */
  async start (): Promise<void> {
    this.#source.on('apply', this.#onApply)
    await this.use(this.#source.current)
    if (this.healthy()) return
    this.close()
    throw new codes.FST_MTLS_OCSP_UNAVAILABLE((this.#lastError as { message: string }).message)
  }

  /** Starts over for `material`'s certificate: drops the old staple and fetches one; resolves when that fetch ends. */
  async use (material: Material): Promise<void> {
    const blocks = readPemBlocks(material.cert).filter(block => block.label === 'CERTIFICATE')
    const leaf = blocks[0]?.der as Buffer
    // A change of trust alone keeps the certificate, and its staple.
    if (this.#leaf !== null && this.#leaf.equals(leaf)) return
    this.#previous = this.#leaf === null ? null : { leaf: this.#leaf, staple: this.#staple }
    this.#leaf = leaf
    this.#staple = null
    this.#answered = null
    this.#failures = 0
    this.#issuer = issuerOf(leaf, [...blocks.slice(1).map(block => block.der), ...material.ca.flatMap(pem => readPemBlocks(pem).map(block => block.der))])
    this.#url = this.#options.url ?? ocspUrlOf(leaf)
    await this.#fetch()
  }

  /** Whether a good staple is being served (always true with failMode 'open'). */
  healthy (): boolean {
    return this.#options.failMode === 'open' || this.#current() !== null
  }

  status (): OcspStapleStatus {
    const staple = this.#current()
    return {
      status: staple?.status.status ?? null,
      thisUpdate: staple?.status.thisUpdate ?? null,
      nextUpdate: staple?.status.nextUpdate ?? null,
      url: this.#url,
      nextFetchAt: this.#nextFetchAt,
      lastError: this.#lastError
    }
  }

  state (): StapleState {
    const staple = this.#current()
    if (staple !== null) return { status: 'good', nextUpdate: staple.status.nextUpdate }
    return { status: this.#answered === 'revoked' || this.#answered === 'unknown' ? this.#answered : 'none', nextUpdate: null }
  }

  close (): void {
    this.#closed = true
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#server.removeListener('OCSPRequest', this.#onOcspRequest)
    this.#server.removeListener('connection', this.#onConnection)
    this.#source.off('apply', this.#onApply)
  }

  #current (): Staple | null {
    return live(this.#staple)
  }

  // The staple of the certificate a connection serves: the current one's, or the previous one's for a connection
  // accepted before the rotation (until its nextUpdate, as it was served before); none for any other.
  #stapleFor (certificate: Buffer): Buffer | null {
    if (this.#leaf?.equals(certificate) === true) return this.#current()?.der ?? null
    if (this.#previous?.leaf.equals(certificate) === true) return live(this.#previous.staple)?.der ?? null
    return null
  }

  async #fetch (): Promise<void> {
    if (this.#timer !== null) clearTimeout(this.#timer)
    const leaf = this.#leaf as Buffer
    const attempt = this.#attempt(leaf).finally(() => { if (this.#pending === attempt) this.#pending = null })
    this.#pending = attempt
    await attempt
  }

  async #attempt (leaf: Buffer): Promise<void> {
    try {
      if (this.#url === null) throw Object.assign(new Error('the certificate names no OCSP responder (authorityInfoAccess) and no url is set'), { code: 'ERR_MTLS_OCSP_NO_URL' })
      if (this.#issuer === null) throw Object.assign(new Error('the certificate\'s issuer is neither in the chain nor among the CAs'), { code: 'ERR_MTLS_OCSP_NO_ISSUER' })
      const request = ocspRequest(leaf, this.#issuer)
      const der = await fetchOcspResponse(this.#url, request.der, { timeoutMs: this.#options.timeoutMs })
      const status = verifyOcspResponse(der, { certificate: leaf, issuer: this.#issuer })
      if (this.#leaf !== leaf) return // rotated meanwhile: the new certificate's fetch decides
      this.#answered = status.status
      if (status.status !== 'good') {
        this.#staple = null
        throw Object.assign(new Error(`the responder says the certificate is ${status.status}${status.reason === undefined ? '' : ` (${status.reason})`}: no staple is served`), { code: 'ERR_MTLS_OCSP_NOT_GOOD' })
      }
      const changed = this.#staple === null || this.#lastError !== null
      this.#staple = { der, status }
      this.#failures = 0
      if (changed) this.#log.info({ url: this.#url, thisUpdate: status.thisUpdate, nextUpdate: status.nextUpdate }, 'OCSP staple in force')
      this.#lastError = null
      this.#schedule(this.#refreshAt(status))
    } catch (err) {
      if (this.#leaf !== leaf) return
      const first = this.#lastError === null
      this.#lastError = { message: describeThrown(err), code: codeOf(err, 'ERR'), at: new Date() }
      this.#failures++
      // One line per change of state, not per attempt.
      if (first) this.#log.warn({ url: this.#url, code: this.#lastError.code }, `OCSP staple not refreshed: ${this.#lastError.message}; ${this.#current() === null ? 'no staple is served' : 'the current one serves until its nextUpdate'}`)
      this.#schedule(Date.now() + Math.min(MAX_BACKOFF_MS, MIN_BACKOFF_MS * 2 ** (this.#failures - 1)))
    }
  }

  #refreshAt (status: OcspStatus): number {
    const nextUpdate = status.nextUpdate.getTime()
    const before = this.#options.refreshBefore ?? (nextUpdate - status.thisUpdate.getTime()) / 2
    return Math.max(Date.now() + MIN_BACKOFF_MS, nextUpdate - before)
  }

  #schedule (at: number): void {
    if (this.#closed) return
    this.#nextFetchAt = new Date(at)
    this.#timer = setTimeout(() => { this.#fetch().catch(() => {}) }, Math.max(0, at - Date.now()))
    this.#timer.unref()
  }
}

interface Staple {
  readonly der: Buffer
  readonly status: OcspStatus
}

/** `staple` while it is current (before its nextUpdate), else null. */
function live (staple: Staple | null): Staple | null {
  return staple !== null && staple.status.nextUpdate.getTime() + SKEW_MS > Date.now() ? staple : null
}

function checkOptions (given: unknown): OcspStaplingOptions {
  if (given === true) return {}
  if (typeof given !== 'object' || given === null) throw new codes.FST_MTLS_INVALID_OPTION(`ocspStapling must be true, false or { url, refreshBefore, failMode, timeoutMs }; got ${JSON.stringify(given)}`)
  const options = snapshotOptions(given as OcspStaplingOptions)
  const unknown = unknownOption(options, KEYS, 'ocspStapling')
  if (unknown !== null) throw new codes.FST_MTLS_INVALID_OPTION(unknown)
  if (options.url !== undefined && (typeof options.url !== 'string' || !URL.canParse(options.url))) throw new codes.FST_MTLS_INVALID_OPTION(`ocspStapling.url must be a URL; got ${JSON.stringify(options.url)}`)
  if (options.refreshBefore !== undefined && !(typeof options.refreshBefore === 'number' && options.refreshBefore >= 0)) throw new codes.FST_MTLS_INVALID_OPTION('ocspStapling.refreshBefore must be a number of milliseconds')
  if (options.failMode !== undefined && options.failMode !== 'closed' && options.failMode !== 'open') throw new codes.FST_MTLS_INVALID_OPTION(`ocspStapling.failMode must be 'closed' or 'open'; got ${JSON.stringify(options.failMode)}`)
  if (options.timeoutMs !== undefined && !(typeof options.timeoutMs === 'number' && options.timeoutMs > 0)) throw new codes.FST_MTLS_INVALID_OPTION('ocspStapling.timeoutMs must be a positive number of milliseconds')
  return options
}

// The certificate that issued `leaf`: the next in the chain normally, else a CA that signed it.
function issuerOf (leaf: Buffer, candidates: Buffer[]): Buffer | null {
  const cert = new X509Certificate(leaf)
  for (const der of candidates) {
    const candidate = new X509Certificate(der)
    if (cert.checkIssued(candidate) && cert.verify(candidate.publicKey)) return der
  }
  return null
}
