import type { FastifyInstance, FastifyRequest } from 'fastify'
import { openTelemetryFor, recordingRequestSpan } from 'mtls-core/internal'

/** Puts one decision on the request's span. */
export type DecisionTelemetry = (request: FastifyRequest, allowed: boolean, rule: string) => void

const NOTHING: DecisionTelemetry = () => {}

/**
 * OpenTelemetry for fastify-mtls-authz, when `@opentelemetry/api` is installed (and `openTelemetry` is not `false`):
 * each decision puts `mtls.authz.decision` (`allow` or `deny`) and `mtls.authz.rule` (what the route required, as the
 * audit line names it) on the request's span, when it records; one call per decision when nothing records.
 */
export async function decisionTelemetry (fastify: FastifyInstance, setting: boolean | undefined): Promise<DecisionTelemetry> {
  const api = await openTelemetryFor(setting, message => { fastify.log.warn(message) }, 'fastify-mtls-authz')
  if (api === null) return NOTHING
  return (request, allowed, rule) => {
    recordingRequestSpan(api, request)?.setAttributes({ 'mtls.authz.decision': allowed ? 'allow' : 'deny', 'mtls.authz.rule': rule })
  }
}
