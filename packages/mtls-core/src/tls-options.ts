/** The lowest TLS version a `minVersion` option may name: 1.3, the default, or 1.2 by explicit choice. */
export type MinTlsVersion = 'TLSv1.2' | 'TLSv1.3'

/** The `minVersion` of every server and client of the toolkit unless told otherwise. */
export const DEFAULT_MIN_VERSION: MinTlsVersion = 'TLSv1.3'

/** What is wrong with a `minVersion` option, or `null` when it is a MinTlsVersion or left out (the default). */
export function minVersionProblem (minVersion: unknown): string | null {
  if (minVersion === undefined || minVersion === 'TLSv1.2' || minVersion === 'TLSv1.3') return null
  return `minVersion must be 'TLSv1.3' or 'TLSv1.2'; got ${JSON.stringify(minVersion)}`
}

/**
 * The material's part of TLS options, `{ cert, key, ca, crl? }`, for `tls.createSecureContext` and
 * `tls.connect`. Not a whole secure context: `setSecureContext` replaces the context whole, so add
 * `minVersion` (and any other setting) every time, or TLS 1.2 is accepted again.
 */
export function materialTlsOptions (material: { readonly cert: string, readonly key: string, readonly ca: readonly string[], readonly crl: readonly string[] }): { cert: string, key: string, ca: string[], crl?: string[] } {
  const options: { cert: string, key: string, ca: string[], crl?: string[] } = { cert: material.cert, key: material.key, ca: [...material.ca] }
  if (material.crl.length > 0) options.crl = [...material.crl]
  return options
}

// The `ca` lists of TLS options built from trust kept by SPIFFE trust domain: OpenSSL takes every bundle for every
// trust domain, and only fastify-mtls holds each peer to its own. Node's TLS server keeps the list it was given
// as `server.ca`, so a plugin can tell such a server from another.
const trustDomainCas = new WeakSet<object>()

/** Marks TLS options (their `ca` list) as built from trust kept by trust domain. */
export function markTrustDomainTls (options: { readonly ca?: unknown }): void {
  if (typeof options.ca === 'object' && options.ca !== null) trustDomainCas.add(options.ca)
}

/** Whether a TLS server (its `ca`) was started with options marked by `markTrustDomainTls`. */
export function isTrustDomainTls (server: object): boolean {
  const ca = (server as { ca?: unknown }).ca
  return typeof ca === 'object' && ca !== null && trustDomainCas.has(ca)
}

// Servers fastify-mtls serves: fastify-mtls-identity refuses to start on one where it cannot see fastify-mtls (its
// records of each connection's verdict would go unread).
const mtlsServers = new WeakSet<object>()

/** Marks a server as one whose connections fastify-mtls keeps records of; `false` takes the mark away. */
export function markMtlsServer (server: object, served = true): void {
  if (served) mtlsServers.add(server)
  else mtlsServers.delete(server)
}

/** Whether fastify-mtls keeps records of this server's connections. */
export function isMtlsServer (server: object): boolean {
  return mtlsServers.has(server)
}
