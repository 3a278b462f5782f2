import type { MaterialFeed, MaterialInput } from 'mtls-core'
import { MATERIAL_INPUT_KEYS, keyExchangeFor, minVersionProblem, snapshotOptions, unknownOption, type KeyExchange } from 'mtls-core/internal'
import type { Agent } from 'undici'
import { MtlsClientError } from './errors.js'
import { ocspModeProblem, type OcspMode } from './ocsp.js'
import { compileAuthorizer, type CompiledAuthorizer, type ServerAuthorizer } from './server-authorizer.js'

export interface MtlsAgentOptions extends MaterialInput {
  /** Authorize the server's identity. Default: any server with a valid certificate for the hostname. */
  server?: ServerAuthorizer
  /** Check the hostname against the server certificate. Default: `true`. With `false` (SPIFFE-only, the usual mesh setting) `server` is required. */
  verifyHostname?: boolean
  /**
   * Where the client certificate, key and trust come from instead of files or PEM: a material feed, such as
   * spiffe-workload-api's `X509Source`. Each update is validated and used for new connections; `status().x509Source`
   * reports the feed. Closing the agent does not close the feed (it may serve a server too).
   */
  x509Source?: MaterialFeed
  /** Reload the client certificate when its files change. Default: `true` when files were given. */
  watch?: boolean | { debounceMs?: number, poll?: boolean | number }
  /** Default: `'TLSv1.3'`. */
  minVersion?: 'TLSv1.2' | 'TLSv1.3'
  /**
   * Offer only hybrid post-quantum key exchange (X25519MLKEM768, SecP256r1MLKEM768, SecP384r1MLKEM1024, those this
   * OpenSSL has): a server that speaks only classical groups is refused at the handshake (ERR_MTLS_SERVER_NOT_POST_QUANTUM).
   * Needs TLS 1.3 and OpenSSL 3.5+ (Node.js 22.20+, 24.5+); elsewhere createMtlsAgent throws ERR_MTLS_POST_QUANTUM_UNSUPPORTED.
   * Default: `false` (Node's defaults: on OpenSSL 3.5 X25519MLKEM768 is offered first, classical groups accepted).
   */
  requirePostQuantum?: boolean
  /**
   * The server's OCSP staple: `'prefer'` asks for one and verifies it when present (a revoked, forged, stale or unknown
   * staple refuses the server); `'require'` also refuses a server that staples nothing; `'off'` asks for none. A
   * certificate that demands a staple (must-staple) is refused without one in every mode. Default: `'prefer'`.
   */
  ocsp?: OcspMode
  /** TLS sessions kept per server name for resumption. Default: 100; 0 turns resumption off. */
  maxCachedSessions?: number
  /**
   * undici's Agent options, all honoured: connections, pipelining, keepAliveTimeout, headersTimeout, bodyTimeout,
   * connectTimeout, allowH2, socketPath, autoSelectFamily, interceptors... The agent owns `connect` (TLS
   * material, server name, authorization) and the session cache (`maxCachedSessions` above).
   */
  agent?: Omit<Agent.Options, 'connect' | 'maxCachedSessions'>
}

const AGENT_KEYS = [...MATERIAL_INPUT_KEYS, 'x509Source', 'server', 'verifyHostname', 'watch', 'minVersion', 'requirePostQuantum', 'ocsp', 'maxCachedSessions', 'agent'] as const satisfies ReadonlyArray<keyof MtlsAgentOptions>
const WATCH_KEYS = ['debounceMs', 'poll'] as const satisfies ReadonlyArray<keyof Exclude<MtlsAgentOptions['watch'], boolean | undefined>>

/** What the options of an agent decide: the server authorizer and the key exchange. */
export interface CheckedAgentOptions {
  readonly authorizer: CompiledAuthorizer | null
  readonly keyExchange: KeyExchange
  /** The `ecdhCurve` of the agent's secure context; `undefined`: Node's default. */
  readonly ecdhCurve: string | undefined
  readonly ocsp: OcspMode
}

/**
 * Checks the options of an agent and compiles its server authorizer; throws ERR_MTLS_CLIENT_INVALID_OPTION, or
 * ERR_MTLS_POST_QUANTUM_UNSUPPORTED for `requirePostQuantum` on an OpenSSL without the hybrid groups.
 * An unknown key is refused: `{ sever: 'spiffe://…' }` would otherwise connect to any server of the CA.
 * (`agent` is undici's own options, passed through as they are.)
 */
export function checkAgentOptions (options: MtlsAgentOptions): CheckedAgentOptions {
  if (typeof options !== 'object' || options === null) throw invalid('createMtlsAgent needs an options object')
  const unknown = unknownOption(options, AGENT_KEYS, 'createMtlsAgent')
  if (unknown !== null) throw invalid(unknown)
  const { server, verifyHostname, watch, minVersion } = options
  const materialGiven = MATERIAL_INPUT_KEYS.filter(key => options[key] !== undefined)
  if (options.x509Source !== undefined && materialGiven.length > 0) throw invalid(`give x509Source or certificate material (${materialGiven.join(', ')}), not both`)
  if (verifyHostname === false && server === undefined) {
    throw invalid('verifyHostname: false needs server: without either check any server of the CA would do')
  }
  const problem = minVersionProblem(minVersion) ?? ocspModeProblem(options.ocsp)
  if (problem !== null) throw invalid(problem)
  if (typeof watch === 'object' && watch !== null) {
    const unknownWatch = unknownOption(watch, WATCH_KEYS, 'createMtlsAgent watch')
    if (unknownWatch !== null) throw invalid(unknownWatch)
  } else if (watch !== undefined && typeof watch !== 'boolean') {
    throw invalid(`watch must be true, false or { debounceMs, poll }; got ${JSON.stringify(watch)}`)
  }
  const { agent } = options
  if (agent !== undefined && (typeof agent !== 'object' || agent === null)) throw invalid('agent must be undici Agent options')
  for (const owned of ['connect', 'maxCachedSessions'] as const) {
    if (agent !== undefined && owned in agent) throw invalid(`agent.${owned}: the mTLS agent owns ${owned === 'connect' ? 'its connector (TLS material, server name, authorization)' : 'its session cache: give maxCachedSessions beside agent'}`)
  }
  const { maxCachedSessions } = options
  if (maxCachedSessions !== undefined && (!Number.isInteger(maxCachedSessions) || maxCachedSessions < 0)) throw invalid(`maxCachedSessions must be a whole number, 0 or more; got ${JSON.stringify(maxCachedSessions)}`)
  const groups = keyExchangeFor(options.requirePostQuantum, { minVersion, where: 'createMtlsAgent' })
  if ('problem' in groups) throw new MtlsClientError(groups.problem.kind === 'unsupported' ? 'ERR_MTLS_POST_QUANTUM_UNSUPPORTED' : 'ERR_MTLS_CLIENT_INVALID_OPTION', groups.problem.message)
  return { authorizer: compileAuthorizer(server), keyExchange: groups.keyExchange, ecdhCurve: groups.ecdhCurve, ocsp: options.ocsp ?? 'prefer' }
}

/** The options read once (mtls-core's snapshotOptions), `watch` and `agent` too; anything but an object is left for checkAgentOptions to refuse. */
export function snapshotAgentOptions (options: MtlsAgentOptions): MtlsAgentOptions {
  if (typeof options !== 'object' || options === null) return options
  const snapshot = snapshotOptions(options)
  if (typeof snapshot.watch === 'object' && snapshot.watch !== null) snapshot.watch = snapshotOptions(snapshot.watch)
  if (typeof snapshot.agent === 'object' && snapshot.agent !== null) snapshot.agent = snapshotOptions(snapshot.agent)
  return snapshot
}

function invalid (message: string): MtlsClientError {
  return new MtlsClientError('ERR_MTLS_CLIENT_INVALID_OPTION', message)
}
