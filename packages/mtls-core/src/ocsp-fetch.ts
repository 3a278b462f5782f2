// Asking an OCSP responder: one POST (RFC 6960 A.1) with undici, a timeout and a size cap on every fetch, over
// http: only unless the caller allows https: (a responder's answer is signed; TLS to it would need trust of its own).
import { request } from 'undici'
import { MtlsCoreError, type OcspFetchErrorCode } from './errors.js'

export interface OcspFetchOptions {
  /** Milliseconds for the whole exchange, connect to last byte. Default: 5000. */
  timeoutMs?: number
  /** Largest response accepted, in bytes. Default: 65536. */
  maxBytes?: number
  /** Allow `https:` URLs too. Default: `false`: `http:` only. */
  allowHttps?: boolean
}

const DEFAULT_TIMEOUT_MS = 5000
const DEFAULT_MAX_BYTES = 65_536

/** POSTs `requestDer` to `url` and returns the response body; throws MtlsCoreError `ERR_MTLS_OCSP_FETCH` saying why not. */
export async function fetchOcspResponse (url: string, requestDer: Uint8Array, options: OcspFetchOptions = {}): Promise<Buffer> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    throw new MtlsCoreError<OcspFetchErrorCode>('ERR_MTLS_OCSP_FETCH', `OCSP: ${JSON.stringify(url)} is not a URL`)
  }
  if (parsed.protocol !== 'http:' && !(parsed.protocol === 'https:' && options.allowHttps === true)) {
    throw new MtlsCoreError<OcspFetchErrorCode>('ERR_MTLS_OCSP_FETCH', `OCSP: ${parsed.protocol} URLs are not fetched (${url}); http: only${parsed.protocol === 'https:' ? ', unless allowHttps' : ''}`)
  }
  const signal = AbortSignal.timeout(timeoutMs)
  try {
    // `reset`: one connection per request; OpenSSL's responder serves one connection at a time, and a kept-alive one would stall the next.
    const response = await request(parsed, {
      method: 'POST',
      headers: { 'content-type': 'application/ocsp-request', accept: 'application/ocsp-response' },
      body: Buffer.from(requestDer),
      signal,
      reset: true,
      maxRedirections: 0
    } as Parameters<typeof request>[1])
    if (response.statusCode !== 200) {
      await response.body.dump()
      throw new MtlsCoreError<OcspFetchErrorCode>('ERR_MTLS_OCSP_FETCH', `OCSP: ${url} answered HTTP ${response.statusCode}`)
    }
    const chunks: Buffer[] = []
    let size = 0
    for await (const chunk of response.body) {
      size += (chunk as Buffer).length
      if (size > maxBytes) {
        response.body.destroy()
        throw new MtlsCoreError<OcspFetchErrorCode>('ERR_MTLS_OCSP_FETCH', `OCSP: the response from ${url} is over ${maxBytes} bytes`)
      }
      chunks.push(chunk as Buffer)
    }
    return Buffer.concat(chunks)
  } catch (err) {
    if (err instanceof MtlsCoreError) throw err
    const why = signal.aborted ? `no answer within ${timeoutMs} ms` : (err as Error).message
    throw new MtlsCoreError<OcspFetchErrorCode>('ERR_MTLS_OCSP_FETCH', `OCSP: cannot fetch from ${url}: ${why}`, { cause: err })
  }
}
