import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import type { BatchObservableResult, Meter, Observable } from '@opentelemetry/api'
import type { Material } from 'mtls-core'
import { openTelemetryFor, recordingRequestSpan, secondsToExpiry } from 'mtls-core/internal'
import type { ConnectionRecord } from './connection-records.js'
import { FAILURE_REASONS, type HandshakeStats } from './handshake-stats.js'
import { certificatesInUse } from './metrics.js'

/**
 * OpenTelemetry for fastify-mtls, when `@opentelemetry/api` is installed (and `openTelemetry` is not `false`):
 * - the request's span gets the connection's `tls.*` attributes, computed once per connection by its record;
 * - observable instruments of the meter `fastify-mtls` read the plugin's counters when the SDK collects, so
 *   nothing is added to the handshake path. Returns what undoes it on close.
 */
export async function registerTelemetry (
  fastify: FastifyInstance,
  setting: boolean | undefined,
  log: FastifyBaseLogger,
  read: () => { stats: HandshakeStats, material: Material },
  recordOf: (socket: object | null | undefined) => ConnectionRecord | null
): Promise<() => void> {
  const api = await openTelemetryFor(setting, message => { log.warn(message) }, 'fastify-mtls')
  if (api === null) return () => {}

  fastify.addHook('onRequest', function mtlsTelemetry (request: FastifyRequest, _reply: FastifyReply, done: HookHandlerDoneFunction) {
    const span = recordingRequestSpan(api, request)
    if (span !== undefined) {
      const record = recordOf(request.raw.socket)
      if (record !== null) span.setAttributes(record.telemetry)
    }
    done()
  })

  // Same names as the Prometheus metrics (metrics.ts), OpenTelemetry style. The meter is taken now: metrics have no
  // proxy provider, so the SDK must be set up before the plugin registers.
  const meter = api.metrics.getMeter('fastify-mtls') as Meter
  const handshakes = meter.createObservableCounter('mtls.handshakes', { description: 'TLS handshakes that reached the application.', unit: '{handshake}' })
  const resumed = meter.createObservableCounter('mtls.resumed_sessions', { description: 'Handshakes that resumed a TLS session.', unit: '{handshake}' })
  const failures = meter.createObservableCounter('mtls.handshake_failures', { description: 'Refused TLS handshakes, by reason.', unit: '{handshake}' })
  const reloads = meter.createObservableCounter('mtls.reloads', { description: 'Certificate material reloads, by result.', unit: '{reload}' })
  const expiry = meter.createObservableGauge('mtls.certificate_expiry', { description: 'Seconds until a certificate in use expires.', unit: 's' })
  const observe = (result: BatchObservableResult): void => {
    const { stats, material } = read()
    result.observe(handshakes, stats.handshakes)
    result.observe(resumed, stats.resumed)
    for (const reason of FAILURE_REASONS) result.observe(failures, stats.failures[reason], { reason })
    result.observe(reloads, stats.reloads.succeeded, { result: 'success' })
    result.observe(reloads, stats.reloads.failed, { result: 'failure' })
    for (const [certificate, cert] of certificatesInUse(material)) {
      result.observe(expiry, secondsToExpiry(cert), { certificate, subject: cert.subject, fingerprint256: cert.fingerprint256 })
    }
  }
  const observables: Observable[] = [handshakes, resumed, failures, reloads, expiry]
  meter.addBatchObservableCallback(observe, observables)
  return () => { meter.removeBatchObservableCallback(observe, observables) }
}
