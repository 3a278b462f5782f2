import { isIP } from 'node:net'
import { WorkloadApiError } from './errors.js'

/** A Workload API endpoint as the SPIFFE Workload Endpoint specification allows it. */
export type WorkloadEndpoint =
  | { readonly kind: 'unix', readonly path: string, readonly target: string, readonly uri: string }
  | { readonly kind: 'tcp', readonly host: string, readonly port: number, readonly target: string, readonly uri: string }

export const ENDPOINT_VARIABLE = 'SPIFFE_ENDPOINT_SOCKET'

function invalid (value: string, reason: string): WorkloadApiError {
  return new WorkloadApiError('ERR_MTLS_WORKLOAD_ENDPOINT_INVALID', `invalid Workload API endpoint ${JSON.stringify(value)}: ${reason}`)
}

/**
 * Parses `unix:///absolute/path` (or `unix:/absolute/path`) or `tcp://IP:port` (an IP address, not a host name), and nothing else: no
 * user info, query or fragment, no path on a tcp address. `target` is the address in gRPC's naming syntax, `uri` as given.
 */
export function parseWorkloadEndpoint (value: string): WorkloadEndpoint {
  if (typeof value !== 'string' || value === '') throw invalid(String(value), 'empty')
  let url: URL
  try {
    url = new URL(value)
  } catch {
    throw invalid(value, 'not a URI (expected unix:///path or tcp://IP:port)')
  }
  if (url.username !== '' || url.password !== '') throw invalid(value, 'user info is not allowed')
  if (url.search !== '' || value.includes('?')) throw invalid(value, 'a query is not allowed')
  if (url.hash !== '' || value.includes('#')) throw invalid(value, 'a fragment is not allowed')
  if (url.protocol === 'unix:') {
    // unix:///path and unix:/path: both set no authority, as the specification asks (go-spiffe takes both).
    if (url.host !== '') throw invalid(value, `a unix endpoint has no authority (got ${JSON.stringify(url.host)})`)
    if (!url.pathname.startsWith('/')) throw invalid(value, 'a unix endpoint is unix:///absolute/path')
    const path = decodeURIComponent(url.pathname)
    if (path === '' || path === '/' || path.endsWith('/')) throw invalid(value, 'a unix endpoint needs the path of a socket')
    return Object.freeze({ kind: 'unix', path, target: `unix:${path}`, uri: value })
  }
  if (url.protocol === 'tcp:') {
    if (url.pathname !== '' && url.pathname !== '/') throw invalid(value, 'a tcp endpoint has no path')
    if (value.endsWith('/')) throw invalid(value, 'a tcp endpoint has no path')
    const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname
    const family = isIP(host)
    if (family === 0) throw invalid(value, `the host must be an IP address (got ${JSON.stringify(url.hostname)})`)
    if (url.port === '') throw invalid(value, 'a tcp endpoint needs a port')
    const port = Number(url.port)
    if (port === 0) throw invalid(value, 'port 0 is not an address')
    const target = family === 4 ? `ipv4:${host}:${port}` : `ipv6:[${host}]:${port}`
    return Object.freeze({ kind: 'tcp', host, port, target, uri: value })
  }
  throw invalid(value, `scheme ${JSON.stringify(url.protocol.slice(0, -1))} is not unix or tcp`)
}

/** The endpoint option if given, else `SPIFFE_ENDPOINT_SOCKET`. */
export function resolveWorkloadEndpoint (endpoint: string | undefined, env: NodeJS.ProcessEnv = process.env): WorkloadEndpoint {
  const value = endpoint ?? env[ENDPOINT_VARIABLE]
  if (value === undefined || value === '') {
    throw new WorkloadApiError('ERR_MTLS_WORKLOAD_ENDPOINT_INVALID', `no Workload API endpoint: pass endpoint or set ${ENDPOINT_VARIABLE}`)
  }
  return parseWorkloadEndpoint(value)
}
