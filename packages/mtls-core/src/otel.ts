import { createHash } from 'node:crypto'
import type { TLSSocket } from 'node:tls'
import { formatName, readCertificateFields, type CertificateFields } from './der.js'

// The types here are structural, not @opentelemetry/api's: the API is an optional peer dependency, and a program that
// compiles against the toolkit's declarations (skipLibCheck off) must not need it installed.

/** The part of an OpenTelemetry span the toolkit writes: `Span` of `@opentelemetry/api` is one. */
export interface TelemetrySpan {
  isRecording: () => boolean
  setAttributes: (attributes: Record<string, string | boolean>) => unknown
}

/** The part of `@opentelemetry/api` the plugins use; a meter is typed by the plugin that uses it. */
export interface OpenTelemetryApi {
  readonly trace: { getActiveSpan: () => TelemetrySpan | undefined }
  readonly metrics: { getMeter: (name: string) => unknown }
}

export type TelemetryAttributes = Readonly<Record<string, string | boolean>>

let loading: Promise<OpenTelemetryApi | null> | undefined

/** The OpenTelemetry API when it is installed, else `null`; imported once per process, whoever asks first. */
export async function loadOpenTelemetry (): Promise<OpenTelemetryApi | null> {
  loading ??= import('@opentelemetry/api').then(api => api as OpenTelemetryApi, () => null)
  return await loading
}

/**
 * The API for a plugin's `openTelemetry` option: `false` turns telemetry off; left out, it is on when the API is
 * installed and silent when it is not; `true` says so (through `warn`) when it cannot be loaded.
 */
export async function openTelemetryFor (setting: boolean | undefined, warn: (message: string) => void, packageName: string): Promise<OpenTelemetryApi | null> {
  if (setting === false) return null
  const api = await loadOpenTelemetry()
  if (api === null && setting === true) warn(`openTelemetry is true, but @opentelemetry/api cannot be loaded: install it beside ${packageName}; nothing is reported meanwhile`)
  return api
}

/**
 * The span a Fastify request's attributes belong on, only when it records: @fastify/otel's request span (it runs each
 * hook under a span of its own, so the active span in a hook is that hook's), else the active span
 * (@opentelemetry/instrumentation-http's server span). Without an SDK this is one call that returns `undefined`.
 */
export function recordingRequestSpan (api: OpenTelemetryApi, request: object): TelemetrySpan | undefined {
  const fastifyOtel = (request as { opentelemetry?: () => { span?: TelemetrySpan | null } }).opentelemetry
  const span = (typeof fastifyOtel === 'function' ? fastifyOtel.call(request).span : null) ?? api.trace.getActiveSpan()
  return span?.isRecording() === true ? span : undefined
}

/**
 * A TLS connection's semantic-convention attributes (`tls.protocol.*`, `tls.cipher`, `tls.resumed`), and those of the
 * certificate the peer presented, under `tls.client.*` or `tls.server.*` (`side` is the peer's). Read once per
 * connection by its owner; `fields` is what it already read of the certificate, when it did.
 */
export function tlsAttributes (socket: TLSSocket, certificate: Buffer | null, side: 'client' | 'server', fields?: CertificateFields | null): TelemetryAttributes {
  const attributes: Record<string, string | boolean> = { 'tls.established': true, 'tls.resumed': socket.isSessionReused() }
  const protocol = socket.getProtocol()
  // Node names it `TLSv1.3`; the convention splits it into `tls` and `1.3`.
  const version = protocol === null ? null : /^TLSv(\d(?:\.\d)?)$/.exec(protocol)
  if (version !== null) {
    attributes['tls.protocol.name'] = 'tls'
    attributes['tls.protocol.version'] = (version[1] as string).includes('.') ? version[1] as string : `${version[1] as string}.0`
  }
  // The IANA name (TLS_AES_256_GCM_SHA384), as the convention asks, rather than OpenSSL's.
  const cipher = socket.getCipher() as { standardName?: string, name?: string } | undefined
  const cipherName = cipher?.standardName ?? cipher?.name
  if (typeof cipherName === 'string') attributes['tls.cipher'] = cipherName
  if (certificate !== null) {
    attributes[`tls.${side}.hash.sha256`] = createHash('sha256').update(certificate).digest('hex').toUpperCase()
    let read = fields
    if (read === undefined) {
      try {
        read = readCertificateFields(certificate)
      } catch {
        read = null // OpenSSL took bytes the DER reader does not: the hash still names the certificate
      }
    }
    if (read !== null) {
      attributes[`tls.${side}.subject`] = formatName(certificate, read.subject)
      attributes[`tls.${side}.not_after`] = read.notAfter.toISOString()
    }
  }
  return Object.freeze(attributes)
}
