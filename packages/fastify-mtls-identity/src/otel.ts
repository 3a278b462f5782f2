import type { FastifyInstance, FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import type { PeerIdentity } from 'mtls-core'
import { openTelemetryFor, recordingRequestSpan } from 'mtls-core/internal'

/**
 * OpenTelemetry for fastify-mtls-identity, when `@opentelemetry/api` is installed (and `openTelemetry` is not
 * `false`): a request whose span records gets `mtls.peer.id` and `mtls.peer.source`. The identity is resolved for
 * that (once per connection, as ever) only when a span records; otherwise the hook costs one call.
 */
export async function registerTelemetry (fastify: FastifyInstance, setting: boolean | undefined, identityOf: (request: FastifyRequest) => PeerIdentity | null): Promise<void> {
  const api = await openTelemetryFor(setting, message => { fastify.log.warn(message) }, 'fastify-mtls-identity')
  if (api === null) return
  fastify.addHook('onRequest', function mtlsIdentityTelemetry (request: FastifyRequest, _reply: FastifyReply, done: HookHandlerDoneFunction) {
    const span = recordingRequestSpan(api, request)
    const identity = span === undefined ? null : identityOf(request)
    if (identity !== null) span?.setAttributes({ 'mtls.peer.id': identity.id, 'mtls.peer.source': identity.source })
    done()
  })
}
