import { subscribe } from 'node:diagnostics_channel'
import type { TLSSocket } from 'node:tls'
import type { PeerIdentity } from 'mtls-core'
import { tlsAttributes, type TelemetryAttributes, type TelemetrySpan } from 'mtls-core/internal'

export type { TelemetrySpan }

// What the connector verified, kept on the connection's own socket: nothing per connection lives in a module map.
const kServer = Symbol('undici-mtls.server')

interface ServerRecord {
  readonly identity: PeerIdentity
  /** The key-exchange group the connection agreed, when Node names it (Node 22 does not name the hybrid ones). */
  readonly group: string | null
  attributes?: TelemetryAttributes
}

/**
 * The connector's mark on a connection it authorized: the server's identity (a resumed session's is the one it was
 * verified with) and the key-exchange group agreed.
 */
export function recordServer (socket: TLSSocket, identity: PeerIdentity | null, group: string | null): void {
  if (identity !== null) Object.defineProperty(socket, kServer, { value: { identity, group } satisfies ServerRecord, configurable: true })
}

// The connection's attributes, read once per connection: the TLS session's, and the server identity the connector verified.
function serverAttributes (socket: unknown): TelemetryAttributes | null {
  const record = (socket as Record<symbol, ServerRecord | undefined> | null)?.[kServer]
  if (record === undefined) return null // not a connection of an undici-mtls agent
  if (record.attributes === undefined) {
    const { identity, group } = record
    record.attributes = Object.freeze({
      ...tlsAttributes(socket as TLSSocket, null, 'server'),
      ...(group === null ? {} : { 'mtls.key_exchange.group': group }),
      'mtls.server.id': identity.id,
      'tls.server.subject': identity.subject,
      'tls.server.hash.sha256': identity.fingerprint256.replaceAll(':', '').toUpperCase(),
      'tls.server.not_after': identity.notAfter.toISOString()
    })
  }
  return record.attributes
}

// The requests whose client span records, until their headers go out on a connection (undici's request objects).
const pending = new WeakMap<object, TelemetrySpan>()
let subscribed = false

/**
 * For `@opentelemetry/instrumentation-undici`: `new UndiciInstrumentation({ requestHook: openTelemetryRequestHook })`.
 * The client span of a request sent through an undici-mtls agent gets `mtls.server.id` and the connection's `tls.*`
 * attributes when the request goes out on its connection (undici's `undici:client:sendHeaders` channel). The
 * instrumentation keeps its spans to itself: this hook is the one way to reach them.
 */
export function openTelemetryRequestHook (span: TelemetrySpan, request: object): void {
  if (!subscribed) {
    subscribed = true
    subscribe('undici:client:sendHeaders', message => {
      const { request, socket } = message as { request: object, socket: unknown }
      const span = pending.get(request)
      if (span === undefined) return
      pending.delete(request)
      const attributes = serverAttributes(socket)
      if (attributes !== null) span.setAttributes(attributes)
    })
  }
  if (span.isRecording()) pending.set(request, span)
}
