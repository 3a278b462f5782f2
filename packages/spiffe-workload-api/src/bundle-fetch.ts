import type { TLSSocket } from 'node:tls'
import { parseSpiffeId, parseTrustDomain } from 'mtls-core'
import { readCertificateFields } from 'mtls-core/internal'
import { fetchBounded } from 'mtls-core/internal/fetch'
import { Agent, buildConnector } from 'undici'
import { WorkloadApiError } from './errors.js'
import { checkOptionKeys, checkTimeout } from './option-keys.js'
import { derToPem } from './pem.js'
import { MAX_BUNDLE_BYTES, parseSpiffeBundle, type SpiffeBundle } from './spiffe-bundle.js'

interface FetchBundleCommon {
  /** The bundle endpoint's `https:` URL. */
  url: string
  /** The trust domain whose bundle the endpoint serves. */
  trustDomain: string
  /** Milliseconds for the whole fetch, connect to last byte. Default: 10000. */
  timeoutMs?: number
  /** Largest document accepted, in bytes. Default and most: 4 MiB. */
  maxBytes?: number
}

/** `https_web`: the endpoint's certificate is verified as any HTTPS server's (Web PKI: CA chain and host name). */
export interface FetchBundleWebOptions extends FetchBundleCommon {
  profile: 'https_web'
  /** PEM CA certificates to verify the endpoint with, in place of Node's default roots. Default: Node's roots. */
  ca?: string | Buffer | ReadonlyArray<string | Buffer>
}

/** `https_spiffe`: the endpoint presents an X509-SVID with `endpointSpiffeId`, chained to `bundle`. */
export interface FetchBundleSpiffeOptions extends FetchBundleCommon {
  profile: 'https_spiffe'
  /** The SPIFFE ID the endpoint's X509-SVID must carry. */
  endpointSpiffeId: string
  /** The bundle of the endpoint's trust domain, already held: a `SpiffeBundle` or DER CA certificates. */
  bundle: SpiffeBundle | readonly Buffer[]
}

export type FetchBundleOptions = FetchBundleWebOptions | FetchBundleSpiffeOptions

const WEB_KEYS = ['url', 'trustDomain', 'profile', 'ca', 'timeoutMs', 'maxBytes'] as const satisfies ReadonlyArray<keyof FetchBundleWebOptions>
const SPIFFE_KEYS = ['url', 'trustDomain', 'profile', 'endpointSpiffeId', 'bundle', 'timeoutMs', 'maxBytes'] as const satisfies ReadonlyArray<keyof FetchBundleSpiffeOptions>

/** A checked request: what `fetchBundle` and a federated source's refreshes send. */
export interface BundleRequest {
  readonly url: string
  readonly trustDomain: string
  readonly timeoutMs: number
  readonly maxBytes: number
  readonly trust: { readonly profile: 'https_web', readonly ca: ReadonlyArray<string | Buffer> | undefined }
  | { readonly profile: 'https_spiffe', readonly endpointSpiffeId: string, readonly endpointTrustDomain: string }
}

function invalid (where: string, message: string, cause?: unknown): WorkloadApiError {
  return new WorkloadApiError('ERR_MTLS_WORKLOAD_INVALID_OPTION', `${where}: ${message}`, { cause })
}

/** Checks the options once, where they enter (the endpoint's bundle, for https_spiffe, is returned apart: it can change). */
export function checkBundleRequest (options: FetchBundleOptions, where: string, extraKeys: readonly string[] = []): { request: BundleRequest, endpointBundle: readonly Buffer[] | null } {
  if (options === null || typeof options !== 'object') throw invalid(where, 'options must be an object')
  const profile: unknown = options.profile
  if (profile !== 'https_web' && profile !== 'https_spiffe') throw invalid(where, `profile must be 'https_web' or 'https_spiffe'; got ${JSON.stringify(profile)}`)
  checkOptionKeys(options, [...(profile === 'https_web' ? WEB_KEYS : SPIFFE_KEYS), ...extraKeys], where)
  let url: URL
  try {
    url = new URL(options.url)
  } catch (err) {
    throw invalid(where, `url ${JSON.stringify(options.url)} is not a URL`, err)
  }
  if (url.protocol !== 'https:') throw invalid(where, `url must be https: (both profiles are HTTPS); got ${url.protocol}`)
  let trustDomain: string
  try {
    trustDomain = parseTrustDomain(options.trustDomain)
  } catch (err) {
    throw invalid(where, `trustDomain: ${(err as Error).message}`, err)
  }
  const timeoutMs = checkTimeout(options.timeoutMs ?? 10_000, where)
  const maxBytes = options.maxBytes ?? MAX_BUNDLE_BYTES
  if (!Number.isSafeInteger(maxBytes) || maxBytes <= 0 || maxBytes > MAX_BUNDLE_BYTES) throw invalid(where, `maxBytes must be a whole number of bytes from 1 to ${MAX_BUNDLE_BYTES}; got ${String(maxBytes)}`)
  const common = { url: url.href, trustDomain, timeoutMs, maxBytes }
  if (options.profile === 'https_web') {
    const ca = options.ca
    const list = ca === undefined ? undefined : (typeof ca === 'string' || Buffer.isBuffer(ca) ? [ca] : [...ca])
    if (list !== undefined && (list.length === 0 || list.some(pem => typeof pem !== 'string' && !Buffer.isBuffer(pem)))) throw invalid(where, 'ca must be PEM text or a non-empty list of PEM texts')
    return { request: Object.freeze({ ...common, trust: Object.freeze({ profile: 'https_web' as const, ca: list }) }), endpointBundle: null }
  }
  let endpointTrustDomain: string
  try {
    const id = parseSpiffeId(options.endpointSpiffeId)
    endpointTrustDomain = id.trustDomain
  } catch (err) {
    throw invalid(where, `endpointSpiffeId: ${(err as Error).message}`, err)
  }
  const endpointBundle = endpointAuthorities(options.bundle, endpointTrustDomain, where)
  return {
    request: Object.freeze({ ...common, trust: Object.freeze({ profile: 'https_spiffe' as const, endpointSpiffeId: options.endpointSpiffeId, endpointTrustDomain }) }),
    endpointBundle
  }
}

function endpointAuthorities (bundle: SpiffeBundle | readonly Buffer[] | undefined, endpointTrustDomain: string, where: string): readonly Buffer[] {
  if (Array.isArray(bundle)) {
    if (bundle.length === 0 || !bundle.every(der => Buffer.isBuffer(der))) throw invalid(where, 'bundle must be a SpiffeBundle or a non-empty list of DER certificates')
    return bundle
  }
  const spiffeBundle = bundle as SpiffeBundle | undefined
  if (spiffeBundle === undefined || spiffeBundle === null || !Array.isArray(spiffeBundle.x509Authorities)) throw invalid(where, 'bundle (the endpoint trust domain\'s bundle) is required for https_spiffe')
  if (spiffeBundle.trustDomain !== endpointTrustDomain) throw invalid(where, `bundle is of ${JSON.stringify(spiffeBundle.trustDomain)}, the endpoint's SPIFFE ID is of ${JSON.stringify(endpointTrustDomain)}`)
  if (spiffeBundle.x509Authorities.length === 0) throw invalid(where, 'bundle holds no X.509 authority to verify the endpoint with')
  return spiffeBundle.x509Authorities
}

/** The endpoint's X509-SVID must carry exactly one SPIFFE ID, the one configured (the chain was verified by OpenSSL). */
function checkEndpointId (socket: TLSSocket, expected: string): WorkloadApiError | null {
  const leaf = socket.getPeerX509Certificate()
  const ids = leaf === undefined ? [] : readCertificateFields(leaf.raw).uris.filter(uri => uri.toLowerCase().startsWith('spiffe://'))
  if (ids.length === 1 && ids[0] === expected) return null
  const found = ids.length === 1 ? JSON.stringify(ids[0]) : `${ids.length} SPIFFE IDs`
  return new WorkloadApiError('ERR_MTLS_BUNDLE_ENDPOINT_UNTRUSTED', `the bundle endpoint presented ${found}, not ${JSON.stringify(expected)}`)
}

function dispatcherFor (request: BundleRequest, endpointBundle: readonly Buffer[] | null): Agent {
  if (request.trust.profile === 'https_web') {
    return new Agent({ connect: { ...(request.trust.ca === undefined ? {} : { ca: [...request.trust.ca] }), rejectUnauthorized: true } })
  }
  const expected = request.trust.endpointSpiffeId
  // Host names play no part: the endpoint is authenticated by its SPIFFE ID, against its trust domain's bundle alone.
  const connect = buildConnector({ ca: derToPem(endpointBundle ?? []), rejectUnauthorized: true, checkServerIdentity: () => undefined } as buildConnector.BuildOptions)
  return new Agent({
    connect: (options, callback) => {
      connect(options, (error, socket) => {
        if (error !== null) { callback(error, null); return }
        const refusal = checkEndpointId(socket as TLSSocket, expected)
        if (refusal === null) { callback(null, socket); return }
        socket.destroy()
        callback(refusal, null)
      })
    }
  })
}

// Verification failures of the endpoint's certificate, as Node and OpenSSL name them.
const UNTRUSTED = /CERT|SIGNATURE|ISSUER|ALTNAME|SELF_SIGNED|UNABLE_TO_VERIFY/

/** Fetches and parses once; every failure is a `WorkloadApiError` (`ERR_MTLS_BUNDLE_*`). */
export async function fetchCheckedBundle (request: BundleRequest, endpointBundle: readonly Buffer[] | null): Promise<SpiffeBundle> {
  const dispatcher = dispatcherFor(request, endpointBundle)
  let body: Buffer
  try {
    body = await fetchBounded(request.url, { method: 'GET', headers: { accept: 'application/json' } },
      { timeoutMs: request.timeoutMs, maxBytes: request.maxBytes, dispatcher, httpsOnly: true }, `bundle of ${JSON.stringify(request.trustDomain)}`, 'ERR_MTLS_BUNDLE_FETCH_FAILED')
  } catch (err) {
    const cause = (err as Error).cause
    if (cause instanceof WorkloadApiError) throw cause
    const causeCode = (cause as { code?: unknown } | undefined)?.code
    const code = typeof causeCode === 'string' && UNTRUSTED.test(causeCode) ? 'ERR_MTLS_BUNDLE_ENDPOINT_UNTRUSTED' : 'ERR_MTLS_BUNDLE_FETCH_FAILED'
    throw new WorkloadApiError(code, (err as Error).message, { cause: err })
  } finally {
    dispatcher.destroy().catch(() => {})
  }
  return parseSpiffeBundle(body, request.trustDomain)
}

/**
 * Fetches a trust domain's bundle from its SPIFFE bundle endpoint (SPIFFE_Federation.md), over `https_web` or
 * `https_spiffe`: one GET, no redirect followed, a timeout and a size cap, and the document parsed strictly.
 */
export async function fetchBundle (options: FetchBundleOptions): Promise<SpiffeBundle> {
  const { request, endpointBundle } = checkBundleRequest(options, 'fetchBundle')
  return await fetchCheckedBundle(request, endpointBundle)
}
