import type { Material } from 'mtls-core'
import { secondsToExpiry } from 'mtls-core/internal'
import type { Counter, Gauge, Registry } from 'prom-client'
import type { RevocationStatus } from './client-revocation.js'
import { codes } from './errors.js'
import { FAILURE_REASONS, type HandshakeStats } from './handshake-stats.js'
import type { StapleState } from './ocsp-stapling.js'

/** The part of a prom-client `Registry` the plugin needs; pass your own registry (prom-client >= 15). */
export interface MetricsRegistry {
  registerMetric: (metric: never) => void
  removeSingleMetric: (name: string) => void
}

/** Each certificate the server uses, by its role (`leaf`, `intermediate`, `ca`): what the expiry gauges report. */
export function certificatesInUse (material: Material): Array<readonly ['leaf' | 'intermediate' | 'ca', Material['leaf']]> {
  return [['leaf', material.leaf] as const, ...material.intermediates.map(c => ['intermediate', c] as const), ...material.authorities.map(c => ['ca', c] as const)]
}

/** What the metrics read at scrape time; `staple` and `revocation` are `null` when their feature is off. */
export interface MetricsState {
  readonly stats: HandshakeStats
  readonly material: Material
  readonly staple: StapleState | null
  readonly revocation: RevocationStatus | null
}

const STAPLE_STATES = ['good', 'revoked', 'unknown', 'none'] as const satisfies ReadonlyArray<StapleState['status']>

/**
 * Registers gauges and counters that read the plugin's state when Prometheus scrapes (prom-client's
 * `collect`), so nothing is counted twice and nothing runs on the request path. The OCSP ones only for the features
 * turned on (as `read()` tells at registration).
 */
export async function registerMetrics (registry: MetricsRegistry, prefix: string, read: () => MetricsState): Promise<() => void> {
  let prom: typeof import('prom-client')
  try {
    prom = await import('prom-client')
  } catch {
    throw new codes.FST_MTLS_INVALID_OPTION('metrics need prom-client: install it beside fastify-mtls')
  }
  const registers = [registry as unknown as Registry]
  const names: string[] = []
  const gauge = (name: string, help: string, labelNames: string[], collect: (this: Gauge) => void): void => {
    names.push(prefix + name)
    // eslint-disable-next-line no-new
    new prom.Gauge({ name: prefix + name, help, labelNames, registers, collect })
  }
  const counter = (name: string, help: string, labelNames: string[], collect: (this: Counter) => void): void => {
    names.push(prefix + name)
    // eslint-disable-next-line no-new
    new prom.Counter({ name: prefix + name, help, labelNames, registers, collect })
  }

  gauge('certificate_expiry_seconds', 'Seconds until a certificate in use expires.', ['certificate', 'subject', 'fingerprint256'], function () {
    this.reset()
    for (const [certificate, cert] of certificatesInUse(read().material)) {
      this.set({ certificate, subject: cert.subject, fingerprint256: cert.fingerprint256 }, secondsToExpiry(cert))
    }
  })
  counter('handshakes_total', 'TLS handshakes that reached the application.', [], function () { this.reset(); this.inc(read().stats.handshakes) })
  counter('resumed_sessions_total', 'Handshakes that resumed a TLS session.', [], function () { this.reset(); this.inc(read().stats.resumed) })
  counter('handshake_failures_total', 'Refused TLS handshakes, by reason.', ['reason'], function () {
    this.reset()
    const { failures } = read().stats
    for (const reason of FAILURE_REASONS) this.inc({ reason }, failures[reason])
  })
  counter('reloads_total', 'Certificate material reloads, by result.', ['result'], function () {
    this.reset()
    const { reloads } = read().stats
    this.inc({ result: 'success' }, reloads.succeeded)
    this.inc({ result: 'failure' }, reloads.failed)
  })
  const { staple, revocation } = read()
  if (staple !== null) {
    gauge('ocsp_staple_status', 'The OCSP staple of the server\'s certificate: 1 for its state (good: stapled; revoked, unknown: the responder said so, nothing stapled; none: nothing stapled otherwise), 0 for the others.', ['status'], function () {
      const { status } = read().staple as StapleState
      for (const state of STAPLE_STATES) this.set({ status: state }, state === status ? 1 : 0)
    })
    gauge('ocsp_staple_next_update_seconds', 'Seconds until the stapled OCSP response\'s nextUpdate; no sample while nothing is stapled.', ['fingerprint256'], function () {
      this.reset()
      const { staple: now, material } = read()
      if (now?.nextUpdate != null) this.set({ fingerprint256: material.leaf.fingerprint256 }, (now.nextUpdate.getTime() - Date.now()) / 1000)
    })
  }
  if (revocation !== null) {
    const ocsp = (): RevocationStatus['ocsp'] => (read().revocation as RevocationStatus).ocsp
    gauge('revocation_ocsp_cached_certificates', 'Client certificates whose OCSP answer is cached.', [], function () { this.set(ocsp().cached) })
    gauge('revocation_ocsp_pending_lookups', 'OCSP lookups of client certificates under way.', [], function () { this.set(ocsp().pending) })
    gauge('revocation_ocsp_responders', 'Distinct OCSP responders asked about client certificates.', [], function () { this.set(ocsp().responders) })
    gauge('revocation_ocsp_failing', '1 while the last attempt to learn a client certificate\'s status failed (until a lookup succeeds), by its code; no sample otherwise.', ['code'], function () {
      this.reset()
      const { lastError } = ocsp()
      if (lastError !== null) this.set({ code: lastError.code }, 1)
    })
    counter('revocation_lookups_total', 'Lookups of a client certificate\'s revocation status (one per certificate not cached), by result: good (or nothing to check), revoked, unknown (the responder said so, or a URL not asked), error (no status learnt).', ['result'], function () {
      this.reset()
      const { lookups } = read().revocation as RevocationStatus
      for (const [result, count] of Object.entries(lookups)) this.inc({ result }, count)
    })
    if (revocation.crl !== null) {
      const crl = (): NonNullable<RevocationStatus['crl']> => (read().revocation as RevocationStatus).crl as NonNullable<RevocationStatus['crl']>
      gauge('revocation_crl_distribution_points', 'CRLs downloaded from client certificates\' distribution points and in use.', [], function () { this.set(crl().distributionPoints.length) })
      gauge('revocation_crl_next_update_seconds', 'Seconds until each CRL in use reaches its nextUpdate; no sample for one without.', ['url'], function () {
        this.reset()
        for (const point of crl().distributionPoints) if (point.nextUpdate !== null) this.set({ url: point.url }, (point.nextUpdate.getTime() - Date.now()) / 1000)
      })
      gauge('revocation_crl_failing', '1 while the last attempt to get or use a CRL failed (until a download succeeds), by its code; no sample otherwise.', ['code'], function () {
        this.reset()
        const { lastError } = crl()
        if (lastError !== null) this.set({ code: lastError.code }, 1)
      })
    }
  }
  // Taken out again when the app closes: a second app on the same registry registers them afresh.
  return () => { for (const name of names) registry.removeSingleMetric(name) }
}
