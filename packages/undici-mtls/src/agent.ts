import { createSecureContext, type TLSSocket } from 'node:tls'
import { createMaterialSource, secureContextOptions, toPeerIdentity, type CertificateSummary, type Material, type MaterialInput, type MaterialSource, type PeerIdentity, type ReloadStatus } from 'mtls-core'
import { describeThrown, presentedChainExpiry } from 'mtls-core/internal'
import { Agent, buildConnector, type Dispatcher } from 'undici'
import { checkAgentOptions, MATERIAL_KEYS, snapshotAgentOptions, type MtlsAgentOptions } from './agent-options.js'
import { MtlsClientError, ServerUnauthorizedError, translateConnectError } from './errors.js'
import { currentHandler } from './legacy-handler.js'
import { SessionCache, type CachedSession } from './session-cache.js'

export interface MtlsAgentStatus {
  readonly certificate: CertificateSummary
  readonly authorities: readonly CertificateSummary[]
  readonly lastReload: ReloadStatus | null
}

type Connector = buildConnector.connector
type ConnectorOptions = buildConnector.BuildOptions

/**
 * An undici Agent for mutual TLS: use it with `undici.request`, `fetch`, `stream`, `compose()` interceptors, or
 * as the dispatcher of your own code; undici's events (`connect`, `disconnect`, `connectionError`) and
 * options work as on any Agent. It owns the TLS of its connections: the client material (one secure context
 * per loaded material, shared by every connection), the server authorizer, and the session cache. New
 * connections present the current client certificate; requests on open connections are never failed by a reload.
 */
export class MtlsAgent extends Agent {
  readonly source: MaterialSource
  readonly #options: MtlsAgentOptions
  readonly #authorize: ((identity: PeerIdentity) => string | null) | null
  readonly #expected: string
  #connectOptions: ConnectorOptions
  #sessions: SessionCache

  constructor (source: MaterialSource, given: MtlsAgentOptions) {
    // Read once: class getters count, a polluted Object.prototype does not.
    const options = snapshotAgentOptions(given)
    const authorizer = checkAgentOptions(options)
    // The arrow runs only once connections are made, after `this` exists.
    const connect: Connector = (connectOptions, callback) => { this.#connect(connectOptions, callback) }
    super({ ...options.agent, connect })
    this.source = source
    this.#options = options
    this.#authorize = authorizer?.check ?? null
    this.#expected = authorizer?.expected ?? 'any server'
    this.#sessions = new SessionCache(options.maxCachedSessions ?? 100)
    this.#connectOptions = this.#optionsFor(source.current)
    // Applied before the source commits: a material Node cannot build a context from is refused, the old one stays.
    source.on('apply', material => {
      this.#connectOptions = this.#optionsFor(material)
      // Sessions resume with the certificate they were made with: new connections must show the new one.
      this.#sessions = new SessionCache(options.maxCachedSessions ?? 100)
    })
  }

  /** The connector, for `new Pool(origin, { connect: agent.connector })` users. */
  readonly connector: Connector = (options, callback) => { this.#connect(options, callback) }

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

  /** Re-reads the client certificate now (as watching does); rejects when it is refused, keeping the old one. */
  async reload (): Promise<{ changed: boolean, fingerprint256: string }> {
    const before = this.source.current
    const material = await this.source.reload()
    return { changed: material !== before, fingerprint256: material.leaf.fingerprint256 }
  }

  status (): MtlsAgentStatus {
    return {
      certificate: this.source.current.leaf,
      authorities: this.source.current.authorities,
      lastReload: this.source.lastReload
    }
  }

  #connect (options: Parameters<Connector>[0], callback: Parameters<Connector>[1]): void {
    const origin = `${options.protocol}//${options.hostname}:${options.port}`
    // Bound to the server name, the origin and the authorizer that approved the session.
    const key = `${options.servername ?? options.hostname}|${origin}|${this.#expected}`
    const sessions = this.#sessions
    const cached = sessions.get(key)
    // undici's connector keeps its own session cache, which would also keep the tickets of servers we refused.
    const connect = buildConnector({ ...this.#connectOptions, maxCachedSessions: 0, ...(cached === undefined ? {} : { session: cached.session }) } as ConnectorOptions)
    let identity: PeerIdentity | null = null
    let until = 0
    const tickets: Buffer[] = []
    const keep = (session: Buffer): void => { if (identity !== null) sessions.set(key, { session, identity, until }) }
    const socket = (connect as unknown as (o: typeof options, cb: Parameters<Connector>[1]) => TLSSocket)(options, (error, connected) => {
      if (error !== null) {
        callback(translateConnectError(error, origin, this.#authorize !== null), null)
        return
      }
      const tlsSocket = connected as TLSSocket
      const verdict = this.#authorizeServer(tlsSocket, cached)
      if (verdict.reason !== null) {
        tlsSocket.destroy()
        callback(new ServerUnauthorizedError(this.#expected, verdict.actual, verdict.reason === '' ? undefined : verdict.reason), null)
        return
      }
      identity = verdict.identity
      until = verdict.until
      for (const ticket of tickets.splice(0)) keep(ticket)
      watchRefusal(tlsSocket)
      callback(null, connected)
    })
    // TLS 1.3 tickets may arrive before or after the handshake callback; they are kept only for an authorized server.
    socket.on('session', (session: Buffer) => { identity === null ? tickets.push(session) : keep(session) })
  }

  // A resumed session shows no certificate: the identity it was verified with stands for it, checked again.
  #authorizeServer (socket: TLSSocket, cached: CachedSession | undefined): { identity: PeerIdentity | null, until: number, actual: string, reason: string | null } {
    let actual = 'no certificate'
    try {
      let identity: PeerIdentity
      let until: number
      if (socket.isSessionReused() && cached !== undefined) {
        identity = cached.identity
        until = cached.until
      } else {
        const certificate = socket.getPeerX509Certificate() as NonNullable<ReturnType<TLSSocket['getPeerX509Certificate']>>
        identity = toPeerIdentity(certificate)
        until = presentedChainExpiry(certificate)
      }
      actual = identity.id
      return { identity, until, actual, reason: this.#authorize?.(identity) ?? null }
    } catch (err) {
      return { identity: null, until: 0, actual, reason: describeThrown(err) }
    }
  }

  // One secure context per material, shared by every connection: building one from PEM costs about a millisecond.
  #optionsFor (material: Material): ConnectorOptions {
    const agent = this.#options.agent ?? {}
    const options = {
      secureContext: createSecureContext({ ...secureContextOptions(material), minVersion: this.#options.minVersion ?? 'TLSv1.3' }),
      rejectUnauthorized: true,
      // undici hands a custom connector none of its connection options: they go to buildConnector.
      allowH2: agent.allowH2 ?? false,
      ...(agent.connectTimeout === undefined ? {} : { timeout: agent.connectTimeout }),
      ...(agent.socketPath === undefined ? {} : { socketPath: agent.socketPath }),
      ...(agent.autoSelectFamily === undefined ? {} : { autoSelectFamily: agent.autoSelectFamily }),
      ...(agent.autoSelectFamilyAttemptTimeout === undefined ? {} : { autoSelectFamilyAttemptTimeout: agent.autoSelectFamilyAttemptTimeout })
    } as unknown as ConnectorOptions
    // SPIFFE-only: the chain is still verified; the name check is replaced by the server authorizer.
    if (this.#options.verifyHostname === false) (options as { checkServerIdentity?: () => undefined }).checkServerIdentity = () => undefined
    return options
  }
}

// A server that refuses our certificate closes the connection right after the handshake (Node servers say
// nothing, others send an alert); undici would report only "other side closed". Ending the socket with our
// own error first (these listeners run before undici's) gives the user the reason.
function watchRefusal (socket: TLSSocket): void {
  let alert: (Error & { code?: string }) | null = null
  socket.on('error', (error: Error & { code?: string }) => {
    if (error.code?.startsWith('ERR_SSL_') === true && error.code.includes('ALERT')) alert = error
  })
  socket.once('end', () => {
    if (socket.bytesRead > 0) return
    const reason = alert === null ? 'the server closed the connection right after the TLS handshake without a word: it most likely refused our client certificate (expired, revoked, or from a CA it does not trust)' : `the server refused our client certificate: ${alert.code ?? ''}`
    socket.destroy(new MtlsClientError('ERR_MTLS_CLIENT_CERT_REJECTED', reason, alert === null ? {} : { cause: alert }))
  })
}

/**
 * Creates an mTLS agent from certificate files or PEM: `{ certFile, keyFile, caFile }` or
 * `{ cert, key, ca }`, validated first (mtls-core's MaterialError names the file and the reason).
 */
export async function createMtlsAgent (given: MtlsAgentOptions): Promise<MtlsAgent> {
  const options = snapshotAgentOptions(given)
  checkAgentOptions(options) // before reading any file; the agent checks them again, for `new MtlsAgent` users
  const input: MaterialInput = {}
  for (const key of MATERIAL_KEYS) if (options[key] !== undefined) (input as Record<string, unknown>)[key] = options[key]
  const source = await createMaterialSource(input, { side: 'client', watch: false })
  const mtlsAgent = new MtlsAgent(source, options)
  const watchOption = options.watch ?? source.current.files.length > 0
  if (watchOption !== false) source.watch(watchOption === true ? {} : watchOption)
  return mtlsAgent
}
