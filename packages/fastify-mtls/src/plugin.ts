import type { TLSSocket, Server as TlsServer } from 'node:tls'
import type { FastifyInstance, FastifyPluginAsync } from 'fastify'
import fp from 'fastify-plugin'
import { ChainVerifier, peerCertificate, secondsToExpiry, unknownOption, watchFiles, type CertificateSummary, type Material, type ReloadStatus } from 'mtls-core'
import { codes } from './errors.js'
import { ExpiryWarnings } from './expiry-warnings.js'
import { emptyStats, failureReason, type HandshakeFailureReason, type HandshakeStats } from './handshake-stats.js'
import { registerMetrics, type MetricsRegistry } from './metrics.js'
import { MAX_REFUSAL_LOG_INTERVAL_MS, RefusalLog } from './refusal-log.js'
import type { MtlsMode, ServerTls } from './server-tls.js'

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
}

declare module 'fastify' {
  interface FastifyInstance {
    mtls: FastifyMtls
  }
}

const DAY_MS = 24 * 60 * 60 * 1000

const fastifyMtls: FastifyPluginAsync<FastifyMtlsOptions> = async (fastify: FastifyInstance, options: FastifyMtlsOptions) => {
  // An unknown key is refused, not ignored: `{ sighub: true }` would otherwise leave reloads off without a word.
  const refuseUnknown = (value: unknown, known: string[], where: string): void => {
    const message = typeof value === 'object' && value !== null ? unknownOption(value, known, where) : null
    if (message !== null) throw new codes.FST_MTLS_INVALID_OPTION(message)
  }
  refuseUnknown(options, ['tls', 'watch', 'sighup', 'expiryWarningDays', 'reloadFailureWindowMs', 'metrics', 'refusalLogIntervalMs'] satisfies Array<keyof FastifyMtlsOptions>, 'plugin options')
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
  if (options.metrics !== undefined && (typeof options.metrics?.registry?.registerMetric !== 'function' || !['undefined', 'string'].includes(typeof options.metrics.prefix))) {
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
  const refused = (reason: HandshakeFailureReason): void => {
    stats.failures[reason]++
    refusals.refused(reason)
  }
  // OpenSSL lets a CA:TRUE leaf through as a client certificate; in require mode it is refused here, before
  // the HTTP layer (which listens after us) reads anything.
  const onSecureConnection = (socket: TLSSocket): void => {
    if (mode === 'require' && peerCertificate(socket)?.ca === true) {
      refused('ca_as_leaf')
      socket.destroy()
      return
    }
    stats.handshakes++
    if (socket.isSessionReused()) stats.resumed++
    if (!socket.authorized) stats.unverified++
  }
  // Node reports a refused certificate as ECONNRESET; the verification result is still on the socket.
  const onTlsClientError = (error: NodeJS.ErrnoException, socket: TLSSocket): void => {
    refused(failureReason(error, socket.authorizationError))
  }
  server.prependListener('secureConnection', onSecureConnection)
  server.on('tlsClientError', onTlsClientError)
  fastify.addHook('onClose', async () => { refusals.close() })

  const warnIfExpiring = (): void => {
    const warning = warnings.check(source.current.leaf)
    if (warning !== null) {
      log.warn({ fingerprint256: source.current.leaf.fingerprint256, notAfter: source.current.leaf.notAfter, daysLeft: warning.daysLeft },
        `the server certificate expires in ${warning.daysLeft} days (under ${warning.threshold})`)
    }
  }
  warnIfExpiring()
  const expiryTimer = setInterval(warnIfExpiring, DAY_MS / 4)
  expiryTimer.unref()

  source.on('update', material => {
    // The context carries ticket keys derived from the trust in force (see TicketKeys): a change of CAs or
    // CRLs invalidates every session ticket, a certificate-only reload keeps them.
    server.setSecureContext(tls.secureContextOptions(material))
    stats.reloads.succeeded++
    log.info({ fingerprint256: material.leaf.fingerprint256, notAfter: material.leaf.notAfter }, 'TLS material reloaded')
    warnIfExpiring()
  })
  source.on('error', error => {
    stats.reloads.failed++
    const code = errorCode(error)
    log.error({ code }, `TLS material reload refused, the previous certificate stays in use: ${error.message}`)
  })

  let lastTicketKeyError = ''
  const reloadTicketKeys = async (): Promise<void> => {
    try {
      if (await tls.ticketKeys.reload()) {
        server.setTicketKeys(tls.ticketKeys.for(source.current))
        log.info({ file: tls.ticketKeys.file }, 'session ticket keys rotated')
      }
      lastTicketKeyError = ''
    } catch (err) {
      const message = (err as Error).message
      if (message !== lastTicketKeyError) log.error({ code: errorCode(err as Error) }, `session ticket keys kept: ${message}`)
      lastTicketKeyError = message
    }
  }

  const watch = options.watch ?? source.current.files.length > 0
  const watchOptions = typeof watch === 'object' ? watch : {}
  if (watch !== false) source.watch(watchOptions)
  const ticketKeysWatcher = watch !== false && tls.ticketKeys.file !== undefined
    ? watchFiles([tls.ticketKeys.file], () => { reloadTicketKeys().catch(() => {}) }, watchOptions)
    : null
  const onSighup = (): void => {
    source.reload().catch(() => {}) // refusals are counted and logged above
    reloadTicketKeys().catch(() => {})
  }
  if (options.sighup === true) process.on('SIGHUP', onSighup)
  if (options.metrics !== undefined) {
    await registerMetrics(options.metrics.registry, options.metrics.prefix ?? 'mtls_', () => ({ stats, material: source.current }))
  }

  const reload = async (): Promise<ReloadResult> => {
    const before = source.current
    await reloadTicketKeys()
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
    const describe = (cert: CertificateSummary): CertificateStatus => ({ ...cert, secondsToExpiry: secondsToExpiry(cert, now), daysToExpiry: Math.floor(secondsToExpiry(cert, now) / 86400) })
    return {
      mode,
      certificate: describe(material.leaf),
      intermediates: material.intermediates.map(describe),
      authorities: material.authorities.map(describe),
      crls: material.crls,
      files: material.files,
      loadedAt: material.loadedAt,
      lastReload: source.lastReload // the source knows how reloads went; status and health read it
    }
  }

  const healthCheck = async (): Promise<boolean> => {
    const now = Date.now()
    if (source.current.leaf.notAfter.getTime() <= now) return false
    const failure = source.lastFailure
    return failure === null || now - failure.since.getTime() < failureWindow
  }

  fastify.decorate('mtls', {
    reload,
    status,
    stats: () => structuredClone(stats),
    healthCheck,
    verifier: () => ChainVerifier.forMaterial(source.current)
  })

  fastify.addHook('onClose', async () => {
    clearInterval(expiryTimer)
    source.close()
    ticketKeysWatcher?.close()
    process.removeListener('SIGHUP', onSighup)
    server.removeListener('secureConnection', onSecureConnection)
    server.removeListener('tlsClientError', onTlsClientError)
  })
}

function errorCode (error: Error): string {
  return (error as { code?: string }).code ?? 'ERR'
}

/** The plugin, wrapped once with fastify-plugin so `fastify.mtls` is visible to the whole application. */
export const plugin = fp(fastifyMtls, { fastify: '5.x', name: 'fastify-mtls' })
