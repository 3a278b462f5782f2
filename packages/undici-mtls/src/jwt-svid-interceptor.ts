import type { Dispatcher } from 'undici'
import { unknownOption } from 'mtls-core/internal'
import { MtlsClientError } from './errors.js'

/** Where the interceptor gets its tokens: spiffe-workload-api's `JwtSource` (cached per audience, refreshed at half-life). */
export interface JwtSvidFetcher {
  fetchJWTSVID: (options: { audience: string }) => Promise<{ readonly token: string }>
}

export interface JwtSvidInterceptorOptions {
  /** A `JwtSource` from spiffe-workload-api (`createJWTSource()`), or any object of its shape. */
  source: JwtSvidFetcher
  /** The audience the token is for: the service called (for example its SPIFFE ID). */
  audience: string
  /** The header to set, lower case. Default: `'authorization'`, as `Bearer <token>`; any other header gets the token alone. */
  header?: string
}

type DispatchFn = Dispatcher['dispatch']
type Headers = Dispatcher.DispatchOptions['headers']

const KEYS = ['source', 'audience', 'header']
const HEADER_NAME = /^[a-z0-9!#$%&'*+.^_`|~-]+$/

/**
 * An undici interceptor (`agent.compose(jwtSvidInterceptor({ source, audience }))`) that sends a JWT-SVID for
 * `audience` with every request: `Authorization: Bearer <token>`, from `source.fetchJWTSVID({ audience })`, which
 * caches the token and fetches a new one before it expires. A request that already has the header is sent as it is
 * (the caller's header wins; nothing is added beside it). When no token can be had, the request fails with
 * `ERR_MTLS_CLIENT_JWT_SVID_UNAVAILABLE` before anything is sent.
 */
export function jwtSvidInterceptor (options: JwtSvidInterceptorOptions): Dispatcher.DispatcherComposeInterceptor {
  const invalid = (message: string): MtlsClientError => new MtlsClientError('ERR_MTLS_CLIENT_INVALID_OPTION', `jwtSvidInterceptor: ${message}`)
  if (options === null || typeof options !== 'object') throw invalid('options must be { source, audience, header? }')
  const unknown = unknownOption(options, KEYS, 'jwtSvidInterceptor')
  if (unknown !== null) throw new MtlsClientError('ERR_MTLS_CLIENT_INVALID_OPTION', unknown)
  const { source, audience } = options
  const header = options.header ?? 'authorization'
  if (source === null || typeof source !== 'object' || typeof source.fetchJWTSVID !== 'function') {
    throw invalid('source must fetch JWT-SVIDs: a JwtSource from spiffe-workload-api (createJWTSource()), or an object with fetchJWTSVID({ audience })')
  }
  if (typeof audience !== 'string' || audience === '') throw invalid('audience must be a non-empty string (the service called, e.g. its SPIFFE ID)')
  if (typeof header !== 'string' || !HEADER_NAME.test(header)) throw invalid(`header must be a lower-case header name; got ${JSON.stringify(header)}`)
  const bearer = header === 'authorization'

  return (dispatch: DispatchFn): DispatchFn => function dispatchWithJwtSvid (opts, handler) {
    if (hasHeader(opts.headers, header)) return dispatch(opts, handler)
    source.fetchJWTSVID({ audience }).then(svid => {
      dispatch({ ...opts, headers: withHeader(opts.headers, header, bearer ? `Bearer ${svid.token}` : svid.token) }, handler)
    }, (err: unknown) => {
      fail(handler, new MtlsClientError('ERR_MTLS_CLIENT_JWT_SVID_UNAVAILABLE', `no JWT-SVID for audience ${JSON.stringify(audience)}: ${(err as Error)?.message ?? String(err)}`, { cause: err }))
    })
    return true
  }
}

// undici's handlers: the current interface (onResponseError), or the older one (onError) that Node's fetch still hands undici 8.
function fail (handler: Dispatcher.DispatchHandler, error: Error): void {
  const current = handler as { onResponseError?: (controller: null, error: Error) => void, onError?: (error: Error) => void }
  if (typeof current.onResponseError === 'function') current.onResponseError(null, error)
  else current.onError?.(error)
}

/** Whether the request's headers (an object, a flat [name, value, …] list, or an iterable of pairs) have `name`. */
function hasHeader (headers: Headers, name: string): boolean {
  if (headers === null || headers === undefined) return false
  // An array is a flat [name, value, …] list (undici refuses an array of pairs).
  if (Array.isArray(headers)) {
    for (let i = 0; i < headers.length; i += 2) if (String(headers[i]).toLowerCase() === name) return true
    return false
  }
  if (typeof (headers as Iterable<unknown>)[Symbol.iterator] === 'function') {
    for (const [key] of headers as Iterable<[string, unknown]>) if (String(key).toLowerCase() === name) return true
    return false
  }
  return Object.keys(headers).some(key => key.toLowerCase() === name)
}

/** The headers with `name: value` added, in a copy of the same form (the caller's object is never changed). */
function withHeader (headers: Headers, name: string, value: string): Headers {
  if (headers === null || headers === undefined) return { [name]: value }
  if (Array.isArray(headers)) return [...headers, name, value] as Headers
  if (typeof (headers as Iterable<unknown>)[Symbol.iterator] === 'function') return [...[...(headers as Iterable<[string, string]>)].flat(), name, value] as Headers
  return { ...headers, [name]: value }
}
