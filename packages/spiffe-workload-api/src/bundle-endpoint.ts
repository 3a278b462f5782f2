// A SPIFFE bundle endpoint (SPIFFE_Federation.md, section 4) as a Fastify plugin: GET on `path` answers the SPIFFE
// bundle of one trust domain from a BundleSource, for partners that federate with us (SPIRE servers among them).
import type { FastifyPluginAsync } from 'fastify'
import fp from 'fastify-plugin'
import { parseTrustDomain } from 'mtls-core'
import { unknownOption } from 'mtls-core/internal'
import type { BundleSource } from './bundle-source.js'
import { bundleEndpointErrors } from './errors.js'
import { formatSpiffeBundle } from './spiffe-bundle.js'

export { bundleEndpointErrors }

export interface BundleEndpointOptions {
  /** Where our bundles come from: `createBundleSource({ x509Source, jwtSource })`. */
  source: BundleSource
  /** The trust domain whose bundle is served (ours, usually). */
  trustDomain: string
  /** The route's path. Default: `/`. */
  path?: string
  /** `spiffe_refresh_hint`, in seconds: how often clients should fetch again. Default: 300. */
  refreshHintSeconds?: number
}

const OPTION_KEYS = ['source', 'trustDomain', 'path', 'refreshHintSeconds'] as const satisfies ReadonlyArray<keyof BundleEndpointOptions>

function checkOptions (options: BundleEndpointOptions): Required<BundleEndpointOptions> {
  const fail = (message: string): Error => new bundleEndpointErrors.FST_MTLS_BUNDLE_ENDPOINT_INVALID_OPTION(message)
  const unknown = unknownOption(options, OPTION_KEYS, 'bundleEndpoint')
  if (unknown !== null) throw fail(unknown)
  if (typeof options.source?.getX509Bundle !== 'function' || typeof options.source.getJwtBundle !== 'function') throw fail('source must be a BundleSource (createBundleSource)')
  let trustDomain: string
  try {
    trustDomain = parseTrustDomain(options.trustDomain)
  } catch (err) {
    throw fail(`trustDomain: ${(err as Error).message}`)
  }
  const path = options.path ?? '/'
  if (typeof path !== 'string' || !path.startsWith('/')) throw fail(`path must start with /; got ${JSON.stringify(path)}`)
  const refreshHintSeconds = options.refreshHintSeconds ?? 300
  if (typeof refreshHintSeconds !== 'number' || !Number.isFinite(refreshHintSeconds) || refreshHintSeconds <= 0) {
    throw fail(`refreshHintSeconds must be a positive number of seconds; got ${String(refreshHintSeconds)}`)
  }
  return { source: options.source, trustDomain, path, refreshHintSeconds }
}

const bundleEndpointPlugin: FastifyPluginAsync<BundleEndpointOptions> = async (fastify, rawOptions) => {
  const { source, trustDomain, path, refreshHintSeconds } = checkOptions(rawOptions)
  // spiffe_sequence: the second the content last changed, or one more than before. A restart does not go back (as a
  // counter in memory would, which clients refuse as a regression) while the clock does not.
  let sequence = 0
  let content: string | null = null
  let document = ''
  fastify.get(path, async (_request, reply) => {
    let x509Authorities: readonly Buffer[] | undefined
    let jwtAuthorities
    try {
      x509Authorities = source.getX509Bundle(trustDomain)
      jwtAuthorities = source.getJwtBundle(trustDomain)?.keys
    } catch (err) {
      throw new bundleEndpointErrors.FST_MTLS_BUNDLE_ENDPOINT_UNAVAILABLE((err as Error).message)
    }
    if (x509Authorities === undefined && jwtAuthorities === undefined) {
      throw new bundleEndpointErrors.FST_MTLS_BUNDLE_ENDPOINT_UNAVAILABLE(`the source holds no bundle of ${JSON.stringify(trustDomain)}`)
    }
    const now = formatSpiffeBundle({ ...(x509Authorities === undefined ? {} : { x509Authorities }), ...(jwtAuthorities === undefined ? {} : { jwtAuthorities }) })
    if (now !== content) {
      content = now
      sequence = Math.max(sequence + 1, Math.floor(Date.now() / 1000))
      document = formatSpiffeBundle({
        ...(x509Authorities === undefined ? {} : { x509Authorities }),
        ...(jwtAuthorities === undefined ? {} : { jwtAuthorities }),
        sequence,
        refreshHintSeconds
      })
    }
    return await reply.header('content-type', 'application/json').header('cache-control', 'no-store').send(document)
  })
}

/** Serves the SPIFFE bundle of `trustDomain` at `path`; see the README's "Bundles and federation". */
export const bundleEndpoint = fp(bundleEndpointPlugin, { fastify: '5.x', name: 'spiffe-bundle-endpoint' })
export default bundleEndpoint
