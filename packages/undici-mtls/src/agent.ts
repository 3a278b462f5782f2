import { MaterialSource, createMaterialSource, type CertificateSummary, type MaterialFeedReport, type MaterialInput, type ReloadStatus } from 'mtls-core'
import { Agent, type Dispatcher } from 'undici'
import { MATERIAL_INPUT_KEYS } from 'mtls-core/internal'
import { checkAgentOptions, snapshotAgentOptions, type MtlsAgentOptions } from './agent-options.js'
import { MtlsConnector, type Connector } from './connector.js'
import { currentHandler } from './legacy-handler.js'
import type { AgentOcspStatus } from './ocsp.js'

export interface MtlsAgentStatus {
  readonly certificate: CertificateSummary
  readonly authorities: readonly CertificateSummary[]
  readonly lastReload: ReloadStatus | null
  /** The feed the material comes from (`x509Source`): its endpoint, connection and last update; else `null`. */
  readonly x509Source: MaterialFeedReport | null
  /** The key exchange: the groups offered, whether post-quantum is required, and what the latest connection agreed. */
  readonly keyExchange: AgentKeyExchange
  /** OCSP: the mode (`ocsp`), the last staple a server presented, and the latest refusal. */
  readonly ocsp: AgentOcspStatus
}

export interface AgentKeyExchange {
  /** The groups offered, in order of preference; `null`: OpenSSL's defaults (on OpenSSL 3.5, X25519MLKEM768 first, classical groups accepted). */
  readonly groups: readonly string[] | null
  /** `requirePostQuantum`: only hybrid post-quantum groups are offered, and a server without them is refused. */
  readonly postQuantumRequired: boolean
  /**
   * The group the latest connection agreed (`'X25519MLKEM768'`, `'X25519'`...); `null` before the first, and on Node 22,
   * which names only classical groups, for a hybrid one (`getEphemeralKeyInfo()` answers `{}` there; Node 24 names it).
   */
  readonly lastGroup: string | null
}

/**
 * An undici Agent for mutual TLS: use it with `undici.request`, `fetch`, `stream`, `compose()` interceptors, or
 * as the dispatcher of your own code; undici's events (`connect`, `disconnect`, `connectionError`) and
 * options work as on any Agent. It owns the TLS of its connections (an MtlsConnector: the client material,
 * the server authorizer, the session cache) and the MaterialSource behind them. New connections present the
 * current client certificate; requests on open connections are never failed by a reload.
 */
export class MtlsAgent extends Agent {
  readonly source: MaterialSource
  /** The connector, for `new Pool(origin, { connect: agent.connector })` users. */
  readonly connector: Connector
  readonly #connector: MtlsConnector

  constructor (source: MaterialSource, given: MtlsAgentOptions) {
    // Read once: class getters count, a polluted Object.prototype does not.
    const options = snapshotAgentOptions(given)
    const connector = new MtlsConnector(options, checkAgentOptions(options), source.current)
    super({ ...options.agent, connect: connector.connect })
    this.source = source
    this.connector = connector.connect
    this.#connector = connector
    // Applied before the source commits: a material Node cannot build a context from is refused, the old one stays.
    source.on('apply', material => { connector.use(material) })
  }

  // Node's global fetch speaks the older handler interface, which undici 8 no longer takes.
  override dispatch (options: Agent.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    return super.dispatch(options, currentHandler(options, handler))
  }

  override close (): Promise<void>
  override close (callback: () => void): void
  override close (callback?: () => void): Promise<void> | void {
    this.source.close()
    return callback === undefined ? super.close() : super.close(callback)
  }

  override destroy (): Promise<void>
  override destroy (error: Error | null): Promise<void>
  override destroy (callback: () => void): void
  override destroy (error: Error | null, callback: () => void): void
  override destroy (errorOrCallback?: Error | null | (() => void), callback?: () => void): Promise<void> | void {
    this.source.close()
    if (typeof errorOrCallback === 'function') return super.destroy(errorOrCallback)
    return callback === undefined ? super.destroy(errorOrCallback ?? null) : super.destroy(errorOrCallback ?? null, callback)
  }

  /**
   * Re-reads the client certificate now (as watching does); rejects when it is refused, keeping the old one.
   * `thumbprintS256` is the new certificate's RFC 8705 thumbprint: tokens bound to the old one stop working.
   */
  async reload (): Promise<{ changed: boolean, fingerprint256: string, thumbprintS256: string }> {
    const before = this.source.current
    const material = await this.source.reload()
    return { changed: material !== before, fingerprint256: material.leaf.fingerprint256, thumbprintS256: material.leaf.thumbprintS256 }
  }

  /**
   * The key-exchange group a connection of this agent agreed at its handshake (`'X25519MLKEM768'`, `'X25519'`...), read
   * from the TLS socket undici connected (its `undici:client:connected` diagnostics message carries it); kept while the
   * socket lives, after it closes too. `null` for a socket this agent did not connect, and for a hybrid group on Node 22 (which cannot name it).
   */
  negotiatedGroup (socket: object): string | null {
    return this.#connector.groupOf(socket)
  }

  /**
   * The client certificate new connections present (`certificate.thumbprintS256` is its RFC 8705 `x5t#S256`, what
   * a certificate-bound token must carry as `cnf['x5t#S256']`), the trusted CAs, and the last reload.
   */
  status (): MtlsAgentStatus {
    return {
      certificate: this.source.current.leaf,
      authorities: this.source.current.authorities,
      lastReload: this.source.lastReload,
      x509Source: this.source.feedStatus(),
      keyExchange: { ...this.#connector.keyExchange, lastGroup: this.#connector.lastGroup },
      ocsp: this.#connector.staples.status()
    }
  }
}

/**
 * Creates an mTLS agent from certificate files or PEM: `{ certFile, keyFile, caFile }` or
 * `{ cert, key, ca }`, validated first (mtls-core's MaterialError names the file and the reason), or from a
 * material feed: `{ x509Source }` (spiffe-workload-api's X509Source), whose updates it follows.
 */
export async function createMtlsAgent (given: MtlsAgentOptions): Promise<MtlsAgent> {
  const options = snapshotAgentOptions(given)
  checkAgentOptions(options) // before reading any file; the agent checks them again, for `new MtlsAgent` users
  const input: MaterialInput = {}
  for (const key of MATERIAL_INPUT_KEYS) if (options[key] !== undefined) (input as Record<string, unknown>)[key] = options[key]
  const source = options.x509Source === undefined
    ? await createMaterialSource(input, { side: 'client', watch: false })
    : await MaterialSource.fromFeed(options.x509Source, { side: 'client' })
  const mtlsAgent = new MtlsAgent(source, options)
  const watchOption = options.watch ?? source.current.files.length > 0
  if (watchOption !== false) source.watch(watchOption === true ? {} : watchOption)
  return mtlsAgent
}
