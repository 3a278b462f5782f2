import type { TLSSocket, Server as TlsServer } from 'node:tls'
import type { FastifyInstance, FastifyPluginAsync } from 'fastify'
import fp from 'fastify-plugin'
import { ChainVerifier, type CertificateSummary, type Material, type MaterialFeedReport, type ReloadStatus } from 'mtls-core'
import { DAY_MS, Trust, codeOf, daysToExpiry, describeThrown, markMtlsServer, secondsToExpiry, snapshotOptions, unknownOption, type TrustRefusal } from 'mtls-core/internal'
import { ConnectionRecords, NOT_RECORDED, type ConnectionRecord, type MtlsConnection } from './connection-records.js'
import { codes } from './errors.js'
import { ExpiryWarnings, LifetimeWarnings } from './expiry-warnings.js'
import { emptyStats, failureReason, verdictReason, type HandshakeFailureReason, type HandshakeStats } from './handshake-stats.js'
import { leafRefusal, trustDomainRefusal } from './leaf-refusal.js'
import { registerMetrics, type MetricsRegistry } from './metrics.js'
import { registerTelemetry } from './otel.js'
import { MAX_REFUSAL_LOG_INTERVAL_MS, RefusalLog } from './refusal-log.js'
import type { MtlsMode, ServerKeyExchange, ServerTls } from './server-tls.js'
import { warnIfKeysFileShared } from './ticket-keys.js'
import type { OcspStapleStatus, OcspStaplingOptions } from './ocsp-stapling.js'
import type { RevocationOptions, RevocationStatus, RevocationVerdict } from './client-revocation.js'

export interface FastifyMtlsOptions {
  /** What `loadServerTls()` returned: the same material the server was started with. */
  tls: ServerTls
  /**
   * Reload when the certificate files change. Default: `true` when the material came from files.
   * `{ debounceMs, poll }` tunes it (poll for filesystems without change events).
   */
  watch?: boolean | { debounceMs?: number, poll?: boolean | number }
  /** Reload on SIGHUP. Default: `false`. */
  sighup?: boolean
  /** Log a warning when the certificate has fewer days left than each of these. Default: `[30, 7]`. */
  expiryWarningDays?: number[]
  /** `healthCheck` reports unhealthy when reloads have kept failing for longer than this. Default: 1 hour. */
  reloadFailureWindowMs?: number
  /** Prometheus metrics in your prom-client registry (prom-client is an optional peer dependency). */
  metrics?: { registry: MetricsRegistry, prefix?: string }
  /** Refused handshakes are logged at `warn`, at most one line per reason per this many ms, with a count. Default: 60000. */
  refusalLogIntervalMs?: number
  /**
   * OpenTelemetry: `tls.*` attributes on each request's span and `mtls.*` metrics, when @opentelemetry/api is installed.
   * Default: on when it is, silent when not; `true` also warns when it cannot be loaded; `false` turns it off.
   */
  openTelemetry?: boolean
  /** Staple an OCSP response for the server's certificate (see the README's "OCSP stapling"). Default: `false`. */
  ocspStapling?: boolean | OcspStaplingOptions
  /** Check client certificates at their OCSP responder on their first handshake (see the README's "Revocation of client certificates"). */
  revocation?: RevocationOptions
}

export interface CertificateStatus extends CertificateSummary {
  readonly daysToExpiry: number
  readonly secondsToExpiry: number
}

export interface MtlsStatus {
  readonly mode: MtlsMode
  readonly certificate: CertificateStatus
  readonly intermediates: readonly CertificateStatus[]
  readonly authorities: readonly CertificateStatus[]
  readonly crls: Material['crls']
  readonly files: readonly string[]
  readonly loadedAt: Date
  readonly lastReload: ReloadStatus | null
  /** The feed the material comes from (`loadServerTls({ x509Source })`): its endpoint, connection and last update; else `null`. */
  readonly x509Source: MaterialFeedReport | null
  /** The key-exchange groups offered (configured: a Node server cannot see which one a connection agreed). */
  readonly keyExchange: ServerKeyExchange
  /** The OCSP staple, with `ocspStapling`; else `null`. */
  readonly ocsp: OcspStapleStatus | null
  /** Client certificate revocation checks, with `revocation`; else `null`. */
  readonly revocation: RevocationStatus | null
}

export interface ReloadResult {
  /** False when the files held what was already in use. */
  readonly changed: boolean
  readonly fingerprint256: string
}

export interface FastifyMtls {
  /** Re-reads and validates the material and applies it to new connections; rejects with FST_MTLS_RELOAD_FAILED. */
  reload: () => Promise<ReloadResult>
  status: () => MtlsStatus
  stats: () => HandshakeStats
  /** For `@fastify/under-pressure`'s `healthCheck`: false once the served certificate expired or reloads kept failing. */
  healthCheck: () => Promise<boolean>
  /**
   * The trust in force (CAs, CRLs, and the server's own intermediates to complete chains) as a verifier, for
   * client certificates that did not come through the handshake: fastify-mtls-identity verifies forwarded ones with it.
   */
  verifier: () => ChainVerifier
  /**
   * The record of the TLS connection behind `socket` (`request.raw.socket`, an HTTP/2 stream's socket included),
   * brought up to date with the trust in force: OpenSSL's verdict at the handshake and what fastify-mtls withdrew
   * since. `null` for a socket this plugin did not see complete a handshake. fastify-mtls-identity reads it.
   */
  connection: (socket: object | null | undefined) => MtlsConnection | null
}

declare module 'fastify' {
  interface FastifyInstance {
    mtls: FastifyMtls
  }
}

const fastifyMtls: FastifyPluginAsync<FastifyMtlsOptions> = async (fastify: FastifyInstance, given: FastifyMtlsOptions) => {
  // Read once: class getters count, a polluted Object.prototype does not.
  const options = snapshotOptions(given)
  if (typeof options.watch === 'object' && options.watch !== null) options.watch = snapshotOptions(options.watch)
  if (typeof options.metrics === 'object' && options.metrics !== null) options.metrics = snapshotOptions(options.metrics)
  // An unknown key is refused, not ignored: `{ sighub: true }` would otherwise leave reloads off without a word.
  const refuseUnknown = (value: unknown, known: string[], where: string): void => {
    const message = typeof value === 'object' && value !== null ? unknownOption(value, known, where) : null
    if (message !== null) throw new codes.FST_MTLS_INVALID_OPTION(message)
  }
  refuseUnknown(options, ['tls', 'watch', 'sighup', 'expiryWarningDays', 'reloadFailureWindowMs', 'metrics', 'refusalLogIntervalMs', 'openTelemetry', 'ocspStapling', 'revocation'] satisfies Array<keyof FastifyMtlsOptions>, 'plugin options')
  refuseUnknown(options.watch, ['debounceMs', 'poll'] satisfies Array<keyof Exclude<FastifyMtlsOptions['watch'], boolean | undefined>>, 'watch')
  refuseUnknown(options.metrics, ['registry', 'prefix'] satisfies Array<keyof NonNullable<FastifyMtlsOptions['metrics']>>, 'metrics')
  const { tls } = options
  if (tls === undefined || tls === null || typeof tls.secureContextOptions !== 'function') {
    throw new codes.FST_MTLS_INVALID_OPTION('the tls option must be what loadServerTls() returned')
  }
  if (options.watch !== undefined && typeof options.watch !== 'boolean' && (typeof options.watch !== 'object' || options.watch === null)) {
    throw new codes.FST_MTLS_INVALID_OPTION(`watch must be true, false or { debounceMs, poll }; got ${JSON.stringify(options.watch)}`)
  }
  if (options.sighup !== undefined && typeof options.sighup !== 'boolean') throw new codes.FST_MTLS_INVALID_OPTION('sighup must be true or false')
  if (options.openTelemetry !== undefined && typeof options.openTelemetry !== 'boolean') throw new codes.FST_MTLS_INVALID_OPTION('openTelemetry must be true or false')
  if (options.metrics !== undefined && (typeof options.metrics?.registry?.registerMetric !== 'function' || typeof options.metrics.registry.removeSingleMetric !== 'function' || !['undefined', 'string'].includes(typeof options.metrics.prefix))) {
    throw new codes.FST_MTLS_INVALID_OPTION('metrics must be { registry, prefix? } with a prom-client Registry')
  }
  const refusalLogIntervalMs = options.refusalLogIntervalMs ?? 60_000
  if (typeof refusalLogIntervalMs !== 'number' || !(refusalLogIntervalMs > 0 && refusalLogIntervalMs <= MAX_REFUSAL_LOG_INTERVAL_MS)) {
    throw new codes.FST_MTLS_INVALID_OPTION(`refusalLogIntervalMs must be a number of milliseconds above 0 and at most ${MAX_REFUSAL_LOG_INTERVAL_MS}`)
  }
  const thresholds = options.expiryWarningDays ?? [30, 7]
  if (!Array.isArray(thresholds) || thresholds.some(days => typeof days !== 'number' || !(days > 0))) {
    throw new codes.FST_MTLS_INVALID_OPTION('expiryWarningDays must be a list of positive numbers of days')
  }
  const failureWindow = options.reloadFailureWindowMs ?? 60 * 60 * 1000
  if (typeof failureWindow !== 'number' || !(failureWindow >= 0)) throw new codes.FST_MTLS_INVALID_OPTION('reloadFailureWindowMs must be a number of milliseconds')
  const server = fastify.server as unknown as TlsServer
  if (typeof server.setSecureContext !== 'function') throw new codes.FST_MTLS_NOT_TLS_SERVER()

  const log = fastify.log.child({ plugin: 'fastify-mtls' })
  const { source, mode } = tls
  const stats = emptyStats()
  const warnings = new ExpiryWarnings(thresholds)

  // Handshake accounting, and a rate-limited warning per refusal reason (never anything from the certificate).
  const refusals = new RefusalLog(log, refusalLogIntervalMs)
  const refused = (reason: HandshakeFailureReason, verdict?: string): void => {
    stats.failures[reason]++
    refusals.refused(reason, verdict)
  }
  // The one record of each connection's verdict (ConnectionRecords): OpenSSL's at the handshake, and what this
  // plugin adds. The trust in force, built when material is applied (a trust it cannot be built from refuses the
  // reload), never on a connection.
  const records = new ConnectionRecords()
  // Loaded only when asked for, as stapling: OCSP brings ASN.1 schemas and an HTTP client.
  // A CRL downloaded again that revokes a certificate of an open connection refuses it, as a reloaded CRL file does.
  const revocation = options.revocation === undefined
    ? null
    : new (await import('./client-revocation.js')).ClientRevocation(options.revocation, log, judge => { records.judgeWith(judge, revokedLater) })
  let trust = Trust.forMaterial(source.current)
  // The trust in force when each connection was accepted: OpenSSL verifies a handshake against the context of
  // that moment (Node hands the new TLS socket the server's context then), which a reload may replace before the
  // handshake ends. Node's TLS socket names the connection it wraps `_parent`; without it, every handshake is
  // taken to have begun under another trust, and judged again.
  const acceptedUnder = new WeakMap<object, Trust>()
  const onConnection = (connection: object): void => { acceptedUnder.set(connection, trust) }
  const onSecureConnection = (socket: TLSSocket): void => {
    const record = records.open(socket, acceptedUnder.get((socket as { _parent?: object })._parent ?? socket) ?? trust)
    // OpenSSL lets a CA:TRUE leaf through as a client certificate, and does not verify a resumed session's
    // certificate again: in require mode both are refused here, before the HTTP layer (which listens after us)
    // reads anything. Only a resumed session can arrive without a certificate in require mode: a ticket from
    // another server (an optional-mode one sharing the keys) must not pass.
    const refusal = mode === 'require' ? leafRefusal(record, trust) : null
    // What OpenSSL did not check of a verified peer: the trust in force, when the handshake began under another,
    // and the peer's own trust domain, when the trust is kept by trust domain; and until when its chain lasts, found
    // now, while the handshake still shows what the peer sent (a chain that cannot be told is refused).
    let problem: { code: string } | null = refusal === null && record.verified ? trustRefusal(record) ?? (record.settle() ? null : NOT_RECORDED) : null
    // Revocation of a certificate OpenSSL let through: known now (cached), or later, its requests held until then.
    const revoked = problem === null && refusal === null && record.verified && revocation !== null ? revocation.check(record) : null
    if (revoked instanceof Promise) record.held = revoked.then(verdict => { record.held = null; revokedLater(record, verdict) })
    else if (revoked !== null) problem = revoked
    if (mode === 'require' && (refusal !== null || problem !== null)) {
      // The verdict goes to the log line, as OpenSSL's does for a handshake it refused.
      if (problem !== null) refused(verdictReason(problem.code), problem.code)
      else refused(refusal as HandshakeFailureReason)
      socket.destroy()
      return
    }
    // Optional mode leaves it to the routes, without an identity: fastify-mtls-identity reads the record.
    if (problem !== null) record.withdraw(problem.code)
    // A revocation refusal is counted in either mode (optional mode's other refusals count as unverified only).
    if (problem !== null && problem === revoked) stats.failures[verdictReason(problem.code)]++
    if (record.verified) records.track(record)
    stats.handshakes++
    if (record.resumed) stats.resumed++
    if (!record.verified) stats.unverified++
  }
  const revokedLater = (record: ConnectionRecord, verdict: RevocationVerdict | null): void => {
    if (verdict === null) return
    if (mode === 'require') {
      refused(verdictReason(verdict.code), verdict.code)
      record.socket.destroy()
      return
    }
    stats.failures[verdictReason(verdict.code)]++
    stats.unverified++
    record.withdraw(verdict.code)
  }
  // A connection's requests wait for its certificate's revocation lookup; one refused in require mode goes no further.
  if (revocation !== null) {
    fastify.addHook('onRequest', async (request, reply) => {
      const record = records.of(request.raw.socket)
      if (record?.held == null) return
      await record.held
      if (record.socket.destroyed) reply.hijack()
    })
  }
  const trustRefusal = (record: ConnectionRecord): TrustRefusal | null => {
    const changed = record.judge(trust, Date.now())
    return changed ?? trustDomainRefusal(record, trust)
  }
  // Node reports a refused certificate as ECONNRESET; the verification result is still on the socket (and
  // goes to the log line: some verdicts say what to do, such as a client that sent its leaf alone).
  const onTlsClientError = (error: NodeJS.ErrnoException, socket: TLSSocket): void => {
    const verdict = socket.authorizationError as unknown
    refused(failureReason(error, verdict), typeof verdict === 'string' ? verdict : undefined)
  }
  server.prependListener('connection', onConnection)
  server.prependListener('secureConnection', onSecureConnection)
  markMtlsServer(server) // fastify-mtls-identity refuses to start where it cannot read these records
  server.on('tlsClientError', onTlsClientError)
  fastify.addHook('onClose', async () => {
    refusals.close()
    revocation?.close()
  })

  // Material a feed pushes (SVIDs of an hour) is judged by its lifetime, at the moments that matter; files by days left.
  const lifetimeWarnings = source.feed === null ? null : new LifetimeWarnings()
  let lifetimeTimer: NodeJS.Timeout | null = null
  const warnIfExpiring = (): void => {
    const leaf = source.current.leaf
    if (lifetimeWarnings !== null) {
      const warning = lifetimeWarnings.check(leaf)
      if (warning !== null) log[warning.level]({ fingerprint256: leaf.fingerprint256, notAfter: leaf.notAfter }, warning.message)
      if (lifetimeTimer !== null) clearTimeout(lifetimeTimer)
      const next = lifetimeWarnings.nextCheck(leaf)
      lifetimeTimer = next === null ? null : setTimeout(warnIfExpiring, next).unref()
      return
    }
    const warning = warnings.check(leaf)
    if (warning !== null) {
      log.warn({ fingerprint256: leaf.fingerprint256, notAfter: leaf.notAfter, daysLeft: warning.daysLeft },
        `the server certificate expires in ${warning.daysLeft} days (under ${warning.threshold})`)
    }
  }
  warnIfExpiring()
  const expiryTimer = setInterval(warnIfExpiring, DAY_MS / 4)
  expiryTimer.unref()

  // The one reload protocol (mtls-core's FileSource): new material is applied first, and committed (shown in
  // status, counted, logged as reloaded) only when setSecureContext took it. The context carries ticket keys
  // derived from the trust and identity in force (see TicketKeys).
  const applyMaterial = (material: Material): void => {
    const next = Trust.forMaterial(material)
    server.setSecureContext(tls.secureContextOptions(material))
    trust = next
  }
  const onMaterial = (material: Material, previous: Material, { failedAttempts }: { failedAttempts: number }): void => {
    stats.reloads.succeeded++
    log.info({ fingerprint256: material.leaf.fingerprint256, notAfter: material.leaf.notAfter },
      failedAttempts === 0 ? 'TLS material reloaded' : `TLS material reloaded after ${failedAttempts} failed attempt${failedAttempts === 1 ? '' : 's'}`)
    warnIfExpiring()
    // A certificate-only rotation keeps the trust (it is built once per trust): only a new one judges connections.
    if (Trust.forMaterial(previous) !== trust) judgeConnections()
  }
  const onMaterialError = (error: Error): void => {
    stats.reloads.failed++
    log.error({ code: codeOf(error, 'ERR') }, `TLS material reload refused, the previous certificate stays in use: ${error.message}`)
  }
  // An open connection outlives no change of trust: each one is judged by what changed (mtls-core's Trust), from its
  // record. In require mode one the new trust refuses is closed; optional mode leaves it to the routes, without an
  // identity (fastify-mtls-identity reads the record, which a request also brings up to date).
  const judgeConnections = (): void => {
    records.judgeAll(trust, Date.now(), (record, refusal) => {
      if (mode !== 'require') return
      refused(verdictReason(refusal.code), refusal.code)
      record.socket.destroy()
    })
  }
  // What serves is the material in force now, whatever the server was started with (a second app on the same tls).
  applyMaterial(source.current)
  source.on('apply', applyMaterial)
  source.on('update', onMaterial)
  source.on('error', onMaterialError)
  // Loaded only when asked for: OCSP brings ASN.1 schemas and an HTTP client that no other server needs.
  const stapler = options.ocspStapling === undefined || options.ocspStapling === false
    ? null
    : new (await import('./ocsp-stapling.js')).OcspStapler(server, source, options.ocspStapling, log)
  await stapler?.start()
  // A feed (x509Source) that loses its agent keeps the material in force: said once per outage, and when it is back.
  const feed = source.feed
  let feedFailures = 0
  const onFeedError = (thrown: unknown): void => {
    feedFailures++
    // A feed may report anything, or nothing: the message is read without trusting its shape.
    const message = describeThrown(thrown)
    // Read through the source: a feed whose status() throws must not break its own error event.
    const status = source.feedStatus()
    const fields = { code: codeOf(thrown, 'ERR'), endpoint: status?.endpoint }
    // A feed that gave up sends nothing more: the certificate in force serves until it expires, and says so loudly.
    if (status?.closed === true) log.error(fields, `x509Source: ${message}; the source no longer receives updates, the certificate in force serves until ${source.current.leaf.notAfter.toISOString()}`)
    else if (feedFailures === 1) log.warn(fields, `x509Source: ${message}; the certificate in force keeps serving meanwhile`)
    else log.debug(fields, `x509Source: still failing (${feedFailures} attempts): ${message}`)
  }
  const onFeedUpdate = (): void => {
    if (feedFailures === 0) return
    log.info({ endpoint: source.feedStatus()?.endpoint }, `x509Source: receiving again after ${feedFailures} failed attempt${feedFailures === 1 ? '' : 's'}`)
    feedFailures = 0
  }
  feed?.on('error', onFeedError)
  feed?.on('update', onFeedUpdate)
  // node:cluster gives each worker, when it listens, the ticket keys the first worker had when it listened (Node's
  // tls.Server _setServerData), over the keys derived from this worker's own trust and identity: a worker forked after
  // a change of trust would resume sessions made under the old trust, and none of its siblings'. Set them again.
  const onListening = (): void => { server.setTicketKeys(tls.ticketKeys.for(source.current)) }
  server.on('listening', onListening)
  fastify.addHook('onClose', async () => { server.off('listening', onListening) })
  const ticketKeys = tls.ticketKeys.source
  const applyTicketKeys = (base: Buffer): void => { server.setTicketKeys(tls.ticketKeys.for(source.current, base)) }
  const onTicketKeys = (): void => {
    log.info({ file: tls.ticketKeys.file }, 'session ticket keys rotated')
    warnIfKeysFileShared(tls.ticketKeys.file as string, log).catch(() => {})
  }
  const onTicketKeysError = (error: Error): void => { log.error({ code: codeOf(error, 'ERR') }, `session ticket keys kept: ${error.message}`) }
  ticketKeys?.on('apply', applyTicketKeys)
  ticketKeys?.on('update', onTicketKeys)
  ticketKeys?.on('error', onTicketKeysError)
  if (ticketKeys !== null) await warnIfKeysFileShared(tls.ticketKeys.file as string, log)

  const watch = options.watch ?? source.current.files.length > 0
  const watchOptions = typeof watch === 'object' ? watch : {}
  // Each app holds its own watch: a second app on the same tls keeps watching when this one closes.
  const stopWatching = watch === false ? [] : [source.watch(watchOptions), ticketKeys?.watch(watchOptions)]
  const onSighup = (): void => {
    // Refusals are counted and logged by the listeners above.
    ticketKeys?.reload().catch(() => {})
    source.reload().catch(() => {})
  }
  if (options.sighup === true) process.on('SIGHUP', onSighup)
  const unregisterMetrics = options.metrics === undefined
    ? null
    : await registerMetrics(options.metrics.registry, options.metrics.prefix ?? 'mtls_', () => ({ stats, material: source.current, staple: stapler?.state() ?? null, revocation: revocation?.status() ?? null }))
  const unregisterTelemetry = await registerTelemetry(fastify, options.openTelemetry, log, () => ({ stats, material: source.current }), socket => records.of(socket))

  const reload = async (): Promise<ReloadResult> => {
    const before = source.current
    await ticketKeys?.reload().catch(() => {}) // a refused keys file is logged; the material's result is the answer
    try {
      const material = await source.reload()
      return { changed: material !== before, fingerprint256: material.leaf.fingerprint256 }
    } catch (err) {
      throw Object.assign(new codes.FST_MTLS_RELOAD_FAILED((err as Error).message), { cause: err })
    }
  }

  const status = (): MtlsStatus => {
    const now = Date.now()
    const material = source.current
    const describe = (cert: CertificateSummary): CertificateStatus => ({ ...cert, secondsToExpiry: secondsToExpiry(cert, now), daysToExpiry: daysToExpiry(cert, now) })
    return {
      mode,
      certificate: describe(material.leaf),
      intermediates: material.intermediates.map(describe),
      authorities: material.authorities.map(describe),
      crls: material.crls,
      files: material.files,
      loadedAt: material.loadedAt,
      lastReload: source.lastReload, // the source knows how reloads went; status and health read it
      x509Source: source.feedStatus(),
      keyExchange: tls.keyExchange,
      ocsp: stapler?.status() ?? null,
      revocation: revocation?.status() ?? null
    }
  }

  const healthCheck = async (): Promise<boolean> => {
    const now = Date.now()
    // Serving ends when the own certificate, an intermediate sent with it, or a CRL expires (OpenSSL then refuses every peer).
    const material = source.current
    const servesUntil = Math.min(material.leaf.notAfter.getTime(), ...material.intermediates.map(cert => cert.notAfter.getTime()), trust.freshUntil)
    if (servesUntil <= now || stapler?.healthy() === false) return false
    return [source.lastFailure, ticketKeys?.lastFailure ?? null].every(failure => failure === null || now - failure.since.getTime() < failureWindow)
  }

  // Forwarded certificates have no handshake: mtls-core's verifier judges them, one per trust, built when first asked.
  let forwarded: { trust: Trust, verifier: ChainVerifier } | null = null
  const verifier = (): ChainVerifier => {
    if (forwarded?.trust !== trust) forwarded = { trust, verifier: new ChainVerifier(trust.options) }
    return forwarded.verifier
  }
  const connection = (socket: object | null | undefined): MtlsConnection | null => {
    const record = records.of(socket)
    record?.refresh(trust, Date.now())
    return record
  }

  fastify.decorate('mtls', {
    reload,
    status,
    stats: () => structuredClone(stats),
    healthCheck,
    verifier,
    connection
  })

  fastify.addHook('onClose', async () => {
    clearInterval(expiryTimer)
    if (lifetimeTimer !== null) clearTimeout(lifetimeTimer)
    stapler?.close()
    // The source belongs to the ServerTls, which another app may use next: stop watching it and stop listening.
    for (const stop of stopWatching) stop?.()
    source.off('apply', applyMaterial).off('update', onMaterial).off('error', onMaterialError)
    feed?.off('error', onFeedError)
    feed?.off('update', onFeedUpdate)
    ticketKeys?.off('apply', applyTicketKeys).off('update', onTicketKeys).off('error', onTicketKeysError)
    unregisterMetrics?.()
    unregisterTelemetry()
    process.removeListener('SIGHUP', onSighup)
    markMtlsServer(server, false)
    server.removeListener('connection', onConnection)
    server.removeListener('secureConnection', onSecureConnection)
    server.removeListener('tlsClientError', onTlsClientError)
  })
}

/** The plugin, wrapped once with fastify-plugin so `fastify.mtls` is visible to the whole application. */
export const plugin = fp(fastifyMtls, { fastify: '5.x', name: 'fastify-mtls' })
