// Asking an OCSP responder (one POST, RFC 6960 A.1) or a CRL distribution point (one GET, RFC 5280 4.2.1.13) with
// undici, a timeout and a size cap on every fetch, over http: only unless the caller allows https: (both answers are
// signed; TLS to them would need trust of its own). `mtls-core/internal/fetch` lends the same bounded fetch to
// spiffe-workload-api's bundle endpoint client: internal, not public API.
import { request, type Dispatcher } from 'undici'
import { MtlsCoreError, type CrlFetchErrorCode, type OcspFetchErrorCode } from './errors.js'

export interface OcspFetchOptions {
  /** Milliseconds for the whole exchange, connect to last byte. Default: 5000. */
  timeoutMs?: number
  /** Largest response accepted, in bytes. Default: 65536. */
  maxBytes?: number
  /** Allow `https:` URLs too. Default: `false`: `http:` only. */
  allowHttps?: boolean
}

/** How `fetchCrl` fetches: as `fetchOcspResponse`, with a larger default size cap. */
export interface CrlFetchOptions extends OcspFetchOptions {
  /** Largest CRL accepted, in bytes. Default: 4 MiB. */
  maxBytes?: number
}

const DEFAULT_TIMEOUT_MS = 5000
const DEFAULT_MAX_BYTES = 65_536
const DEFAULT_MAX_CRL_BYTES = 4 * 1024 * 1024

/** POSTs `requestDer` to `url` and returns the response body; throws MtlsCoreError `ERR_MTLS_OCSP_FETCH` saying why not. */
export async function fetchOcspResponse (url: string, requestDer: Uint8Array, options: OcspFetchOptions = {}): Promise<Buffer> {
  // `reset`: one connection per request; OpenSSL's responder serves one connection at a time, and a kept-alive one would stall the next.
  return await fetchBounded<OcspFetchErrorCode>(url, {
    method: 'POST',
    headers: { 'content-type': 'application/ocsp-request', accept: 'application/ocsp-response' },
    body: Buffer.from(requestDer)
  }, { ...options, maxBytes: options.maxBytes ?? DEFAULT_MAX_BYTES }, 'OCSP', 'ERR_MTLS_OCSP_FETCH')
}

/** GETs the CRL at `url` (a CRL distribution point) and returns the body; throws MtlsCoreError `ERR_MTLS_CRL_FETCH` saying why not. */
export async function fetchCrl (url: string, options: CrlFetchOptions = {}): Promise<Buffer> {
  return await fetchBounded<CrlFetchErrorCode>(url, { method: 'GET', headers: { accept: 'application/pkix-crl' } },
    { ...options, maxBytes: options.maxBytes ?? DEFAULT_MAX_CRL_BYTES }, 'CRL', 'ERR_MTLS_CRL_FETCH')
}

/** How `fetchBounded` fetches: a dispatcher of the caller's (TLS trust of its own), and `https:` alone when asked. */
export interface BoundedFetchOptions extends OcspFetchOptions {
  maxBytes: number
  dispatcher?: Dispatcher
  httpsOnly?: boolean
}

/**
 * One bounded fetch (a timeout from connect to last byte, a size cap, no redirect followed), failing with an
 * MtlsCoreError of `code` that says why. OCSP, CRLs and SPIFFE bundle endpoints (spiffe-workload-api) use it.
 */
export async function fetchBounded<Code extends string> (url: string, init: { method: 'GET' | 'POST', headers: Record<string, string>, body?: Buffer },
  options: BoundedFetchOptions, what: string, code: Code): Promise<Buffer> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS
  const { maxBytes } = options
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    throw new MtlsCoreError<Code>(code, `${what}: ${JSON.stringify(url)} is not a URL`)
  }
  if (options.httpsOnly === true && parsed.protocol !== 'https:') {
    throw new MtlsCoreError<Code>(code, `${what}: ${parsed.protocol} URLs are not fetched (${url}); https: only`)
  }
  if (parsed.protocol !== 'http:' && !(parsed.protocol === 'https:' && (options.allowHttps === true || options.httpsOnly === true))) {
    throw new MtlsCoreError<Code>(code, `${what}: ${parsed.protocol} URLs are not fetched (${url}); http: only${parsed.protocol === 'https:' ? ', unless allowHttps' : ''}`)
  }
  const signal = AbortSignal.timeout(timeoutMs)
  try {
    const response = await request(parsed, {
      ...init, signal, reset: true, maxRedirections: 0, ...(options.dispatcher === undefined ? {} : { dispatcher: options.dispatcher })
    } as Parameters<typeof request>[1])
    if (response.statusCode !== 200) {
      await response.body.dump()
      throw new MtlsCoreError<Code>(code, `${what}: ${url} answered HTTP ${response.statusCode}`)
    }
    // A declared length over the cap is refused before any of it is read.
    const declared = Number(response.headers['content-length'])
    if (Number.isFinite(declared) && declared > maxBytes) {
      // Destroyed unread: the abort it reports is expected, not an uncaught error.
      response.body.on('error', () => {}).destroy()
      throw new MtlsCoreError<Code>(code, `${what}: the response from ${url} is over ${maxBytes} bytes`)
    }
    const chunks: Buffer[] = []
    let size = 0
    for await (const chunk of response.body) {
      size += (chunk as Buffer).length
      if (size > maxBytes) {
        response.body.destroy()
        throw new MtlsCoreError<Code>(code, `${what}: the response from ${url} is over ${maxBytes} bytes`)
      }
      chunks.push(chunk as Buffer)
    }
    return Buffer.concat(chunks)
  } catch (err) {
    if (err instanceof MtlsCoreError) throw err
    const why = signal.aborted ? `no answer within ${timeoutMs} ms` : (err as Error).message
    throw new MtlsCoreError<Code>(code, `${what}: cannot fetch from ${url}: ${why}`, { cause: err })
  }
}
