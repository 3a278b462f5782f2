import type { ServerOptions } from 'node:https'
import type { SecureContextOptions } from 'node:tls'
import { MaterialSource, createMaterialSource, materialTlsOptions, type Material, type MaterialFeed, type MaterialInput } from 'mtls-core'
import { DEFAULT_MIN_VERSION, MATERIAL_INPUT_KEYS, keyExchangeFor, markTrustDomainTls, minVersionProblem, snapshotOptions, unknownOption } from 'mtls-core/internal'
import { codes } from './errors.js'
import { TicketKeys } from './ticket-keys.js'

/**
 * `'require'`: a verified client certificate is required; anything else is refused at the handshake.
 * `'optional'`: a certificate is asked for, but connections without one (or with one that does not verify)
 * reach the routes, which decide (health probes, migrations from plain TLS, like Istio's PERMISSIVE).
 */
export type MtlsMode = 'require' | 'optional'

/** TLS settings applied to every secure context, at start and on every reload. */
export type ServerTlsOverrides = Omit<SecureContextOptions, 'cert' | 'key' | 'ca' | 'crl' | 'passphrase' | 'pfx' | 'ticketKeys'>

export interface ServerTlsOptions extends MaterialInput {
  /** Default: `'require'`. */
  mode?: MtlsMode
  /** Default: `'TLSv1.3'`. `'TLSv1.2'` only by explicit choice. */
  minVersion?: 'TLSv1.2' | 'TLSv1.3'
  /**
   * Offer only hybrid post-quantum key exchange (X25519MLKEM768, SecP256r1MLKEM768, SecP384r1MLKEM1024, those this
   * OpenSSL has): a classical-only client is refused at the handshake. Needs TLS 1.3 and OpenSSL 3.5+ (Node.js 22.20+,
   * 24.5+); elsewhere loadServerTls throws FST_MTLS_POST_QUANTUM_UNSUPPORTED. Not with `tlsOptions.ecdhCurve`. Default: `false`.
   */
  requirePostQuantum?: boolean
  /** Further TLS settings (ciphers, sigalgs, ecdhCurve, sessionTimeout, ...), kept across reloads. */
  tlsOptions?: ServerTlsOverrides
  /** Base secret for session ticket keys (48 bytes), shared by replicas behind one load balancer. Default: random. */
  ticketKeys?: Buffer
  /** The same, from a file (48 bytes raw, or base64); the plugin reloads it when it changes. */
  ticketKeysFile?: string
  /** Require our own chain to lead to one of the trusted CAs. Default: `true`. */
  verifyOwnChain?: boolean
  /**
   * Where the certificate, key and trust come from instead of files or PEM: a material feed, such as
   * spiffe-workload-api's `X509Source` (SVIDs and bundles from the SPIFFE Workload API). Each update is
   * validated and applied like a file change; the plugin reports the feed in `status().x509Source`.
   */
  x509Source?: MaterialFeed
}

/**
 * The key exchange a server offers. A Node server cannot see which group a connection agreed (OpenSSL tells only
 * the client: `getEphemeralKeyInfo()` is null on a server socket), so this is what was configured.
 */
export interface ServerKeyExchange {
  /** The groups offered, in order of preference; `null`: OpenSSL's defaults (on OpenSSL 3.5, X25519MLKEM768 first, classical groups accepted). */
  readonly groups: readonly string[] | null
  /** `requirePostQuantum`: only hybrid post-quantum groups are offered. */
  readonly postQuantumRequired: boolean
}

/** Validated server TLS material and the options to start Fastify with. */
export interface ServerTls {
  readonly mode: MtlsMode
  /** Owns the current material; the plugin reloads through it. */
  readonly source: MaterialSource
  /** Pass as `Fastify({ https: httpsOptions })` (also with `http2: true`); built from the material in force when read. */
  readonly httpsOptions: ServerOptions
  /** Session ticket keys, derived from a base secret and the trust in force. */
  readonly ticketKeys: TicketKeys
  /** The key-exchange groups configured, and whether post-quantum is required (kept by every reload). */
  readonly keyExchange: ServerKeyExchange
  /** The complete secure context for some material: what every reload hands to `setSecureContext`. */
  secureContextOptions: (material: Material) => SecureContextOptions
}

const SERVER_TLS_KEYS = [
  ...MATERIAL_INPUT_KEYS,
  'mode', 'minVersion', 'requirePostQuantum', 'tlsOptions', 'ticketKeys', 'ticketKeysFile', 'verifyOwnChain', 'x509Source'
] as const satisfies ReadonlyArray<keyof ServerTlsOptions>
const MODES = new Set<unknown>(['require', 'optional'])

/**
 * Loads and validates server certificate material (mtls-core) and returns it with secure `httpsOptions`:
 * TLS 1.3 minimum, a client certificate requested, and in `require` mode refused at the handshake when it
 * does not verify. Throws FST_MTLS_INVALID_OPTION for wrong or unknown options (`{ crlfile }` would otherwise
 * serve without the CRL), FST_MTLS_POST_QUANTUM_UNSUPPORTED for `requirePostQuantum` on an OpenSSL without the hybrid
 * groups, and mtls-core's MaterialError for unusable material.
 */
export async function loadServerTls (given: ServerTlsOptions): Promise<ServerTls> {
  if (typeof given !== 'object' || given === null) throw new codes.FST_MTLS_INVALID_OPTION('loadServerTls needs an options object')
  // Read once: layered defaults and class getters count, a polluted Object.prototype does not.
  const options = snapshotOptions(given)
  const unknown = unknownOption(options, SERVER_TLS_KEYS, 'loadServerTls')
  if (unknown !== null) throw new codes.FST_MTLS_INVALID_OPTION(unknown)
  const { mode = 'require', minVersion = DEFAULT_MIN_VERSION, requirePostQuantum, tlsOptions = {}, ticketKeys: ticketKeysOption, ticketKeysFile, verifyOwnChain, x509Source, ...input } = options
  if (!MODES.has(mode)) throw new codes.FST_MTLS_INVALID_OPTION(`mode must be 'require' or 'optional'; got ${JSON.stringify(mode)}`)
  const versionProblem = minVersionProblem(minVersion)
  if (versionProblem !== null) throw new codes.FST_MTLS_INVALID_OPTION(versionProblem)
  if (typeof tlsOptions !== 'object' || tlsOptions === null) throw new codes.FST_MTLS_INVALID_OPTION('tlsOptions must be an object of Node TLS settings')
  const groups = keyExchangeFor(requirePostQuantum, { ecdhCurve: tlsOptions.ecdhCurve, minVersion, where: 'tlsOptions' })
  if ('problem' in groups) {
    throw groups.problem.kind === 'unsupported' ? new codes.FST_MTLS_POST_QUANTUM_UNSUPPORTED(groups.problem.message) : new codes.FST_MTLS_INVALID_OPTION(groups.problem.message)
  }
  const { keyExchange, ecdhCurve } = groups
  // One place the material comes from: files and PEM beside a feed would be ignored, or mixed into its trust.
  const materialGiven = Object.keys(input).filter(key => input[key as keyof MaterialInput] !== undefined)
  if (x509Source !== undefined && materialGiven.length > 0) throw new codes.FST_MTLS_INVALID_OPTION(`give x509Source or certificate material (${materialGiven.join(', ')}), not both`)
  const ticketKeys = await TicketKeys.create({ ticketKeys: ticketKeysOption, ticketKeysFile, mode })
  const materialOptions = { side: 'server' as const, ...(verifyOwnChain === undefined ? {} : { verifyOwnChain }) }
  const source = x509Source === undefined
    ? await createMaterialSource(input, { ...materialOptions, watch: false })
    : await MaterialSource.fromFeed(x509Source, materialOptions)

  // Every reload rebuilds the context from this complete set: setSecureContext replaces it whole, and a
  // missing `ca` would refuse every client, a missing `minVersion` would quietly accept TLS 1.2 again.
  const contextOptions = (material: Material): SecureContextOptions => {
    const options = { ...tlsOptions, ...materialTlsOptions(material), minVersion, ...(ecdhCurve === undefined ? {} : { ecdhCurve }), ticketKeys: ticketKeys.for(material) }
    // Trust kept by trust domain needs fastify-mtls to hold each peer to its own: fastify-mtls-identity checks for it.
    if (material.trustDomains !== null) markTrustDomainTls(options)
    return options
  }
  return Object.freeze({
    mode,
    source,
    ticketKeys,
    keyExchange,
    // Built from the material in force each time it is read: a server made after a reload starts with what serves.
    get httpsOptions (): ServerOptions {
      return Object.freeze({ ...contextOptions(source.current), requestCert: true, rejectUnauthorized: mode === 'require' })
    },
    secureContextOptions: contextOptions
  })
}
