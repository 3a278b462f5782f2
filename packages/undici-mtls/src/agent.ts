import type { TLSSocket } from 'node:tls'
import { createMaterialSource, secureContextOptions, toPeerIdentity, type CertificateSummary, type Material, type MaterialInput, type MaterialSource, type PeerIdentity, type ReloadStatus } from 'mtls-core'
import { Agent, buildConnector, Dispatcher } from 'undici'
import { checkAgentOptions, MATERIAL_KEYS, type MtlsAgentOptions } from './agent-options.js'
import { MtlsClientError, ServerUnauthorizedError, translateConnectError } from './errors.js'

export interface MtlsAgentStatus {
  readonly certificate: CertificateSummary
  readonly authorities: readonly CertificateSummary[]
  readonly lastReload: ReloadStatus | null
}

type Connector = buildConnector.connector
type ConnectorOptions = buildConnector.BuildOptions

/**
 * An undici Dispatcher for mutual TLS: use it with `undici.request`, `fetch`, `stream`, or as the
 * dispatcher of your own code. New connections present the current client certificate; requests on open
 * connections are never failed by a reload.
 */
export class MtlsAgent extends Dispatcher {
  readonly source: MaterialSource
  readonly #agent: Agent
  readonly #options: MtlsAgentOptions
  readonly #authorize: ((identity: PeerIdentity) => string | null) | null
  readonly #expected: string
  #connectOptions: ConnectorOptions
  /** TLS sessions of servers we authorized, with the identity they proved: a resumed session shows no certificate. */
  #sessions = new Map<string, { session: Buffer, identity: PeerIdentity }>()

  constructor (source: MaterialSource, options: MtlsAgentOptions) {
    super()
    this.source = source
    this.#options = options
    const authorizer = checkAgentOptions(options)
    this.#authorize = authorizer?.check ?? null
    this.#expected = authorizer?.expected ?? 'any server'
    this.#connectOptions = this.#optionsFor(source.current)
    source.on('update', material => {
      // Sessions resume with the certificate they were made with: drop them all, new connections show the new one.
      this.#connectOptions = this.#optionsFor(material)
      this.#sessions = new Map()
    })
    this.#agent = new Agent({ ...options.agent, connect: this.connector })
  }

  /** The connector, for `new Pool(origin, { connect: agent.connector })` users. */
  readonly connector: Connector = (options, callback) => {
    const origin = `${options.protocol}//${options.hostname}:${options.port}`
    const key = `${options.servername ?? options.hostname}|${origin}`
    const sessions = this.#sessions
    const cached = this.#options.maxCachedSessions === 0 ? undefined : sessions.get(key)
    // undici's connector keeps its own session cache, which would also keep the tickets of servers we refused.
    const connect = buildConnector({ ...this.#connectOptions, maxCachedSessions: 0, ...(cached === undefined ? {} : { session: cached.session }) } as ConnectorOptions)
    let identity: PeerIdentity | null = null
    const tickets: Buffer[] = []
    const keep = (session: Buffer): void => {
      if (identity !== null && sessions === this.#sessions && this.#options.maxCachedSessions !== 0) this.#remember(key, { session, identity })
    }
    const socket = (connect as unknown as (o: typeof options, cb: Parameters<Connector>[1]) => TLSSocket)(options, (error, connected) => {
      if (error !== null) {
        callback(translateConnectError(error, origin), null)
        return
      }
      const tlsSocket = connected as TLSSocket
      let actual = 'no certificate'
      let reason: string | null = null
      try {
        identity = tlsSocket.isSessionReused() && cached !== undefined ? cached.identity : toPeerIdentity(tlsSocket.getPeerX509Certificate() as NonNullable<ReturnType<TLSSocket['getPeerX509Certificate']>>)
        actual = identity.id
        reason = this.#authorize?.(identity) ?? null
      } catch (err) {
        reason = (err as Error).message
      }
      if (reason !== null) {
        identity = null
        tlsSocket.destroy()
        callback(new ServerUnauthorizedError(this.#expected, actual, reason === '' ? undefined : reason), null)
        return
      }
      for (const ticket of tickets.splice(0)) keep(ticket)
      this.#watchSocket(tlsSocket)
      callback(null, connected)
    })
    // TLS 1.3 tickets may arrive before or after the handshake callback; they are kept only for an authorized server.
    socket.on('session', (session: Buffer) => { identity === null ? tickets.push(session) : keep(session) })
    return socket
  }

  override dispatch (options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    return this.#agent.dispatch(options, handler)
  }

  override close (): Promise<void>
  override close (callback: () => void): void
  override close (callback?: () => void): Promise<void> | void {
    this.source.close()
    return settle(this.#agent.close(), callback)
  }

  override destroy (): Promise<void>
  override destroy (error: Error | null): Promise<void>
  override destroy (callback: () => void): void
  override destroy (error: Error | null, callback: () => void): void
  override destroy (errorOrCallback?: Error | null | (() => void), callback?: () => void): Promise<void> | void {
    this.source.close()
    const error = typeof errorOrCallback === 'function' ? null : errorOrCallback ?? null
    return settle(this.#agent.destroy(error), typeof errorOrCallback === 'function' ? errorOrCallback : callback)
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

  #optionsFor (material: Material): ConnectorOptions {
    const options = {
      ...secureContextOptions(material),
      minVersion: this.#options.minVersion ?? 'TLSv1.3',
      rejectUnauthorized: true,
      // undici gives a custom connector neither ALPN nor the connect timeout: they go to buildConnector.
      allowH2: this.#options.agent?.allowH2 ?? false,
      ...(this.#options.agent?.connectTimeout === undefined ? {} : { timeout: this.#options.agent.connectTimeout })
    } as unknown as ConnectorOptions
    // SPIFFE-only: the chain is still verified; the name check is replaced by the server authorizer.
    if (this.#options.verifyHostname === false) (options as { checkServerIdentity?: () => undefined }).checkServerIdentity = () => undefined
    return options
  }

  #remember (key: string, entry: { session: Buffer, identity: PeerIdentity }): void {
    this.#sessions.delete(key)
    this.#sessions.set(key, entry)
    const limit = this.#options.maxCachedSessions ?? 100
    if (this.#sessions.size > limit) this.#sessions.delete(this.#sessions.keys().next().value as string)
  }

  // A server that refuses our certificate closes the connection right after the handshake (Node servers say
  // nothing, others send an alert); undici would report only "other side closed". Ending the socket with our
  // own error first (these listeners run before undici's) gives the user the reason.
  #watchSocket (socket: TLSSocket): void {
    let alert: (Error & { code?: string }) | null = null
    socket.on('error', (error: Error & { code?: string }) => {
      if (error.code?.startsWith('ERR_SSL_') === true && error.code.includes('ALERT')) alert = error
    })
    socket.once('end', () => {
      if (socket.bytesRead > 0) return
      const reason = alert === null ? 'the server closed the connection right after the TLS handshake without a word: it most likely refused our client certificate (expired, revoked, or from a CA it does not trust)' : `the server refused our client certificate: ${alert.code ?? ''}`
      socket.destroy(new MtlsClientError('UND_MTLS_CLIENT_CERT_REJECTED', reason, alert === null ? {} : { cause: alert }))
    })
  }
}

function settle (promise: Promise<void>, callback: (() => void) | undefined): Promise<void> | undefined {
  if (callback === undefined) return promise
  promise.then(callback, callback)
  return undefined
}

/**
 * Creates an mTLS dispatcher from certificate files or PEM: `{ certFile, keyFile, caFile }` or
 * `{ cert, key, ca }`, validated first (mtls-core's MaterialError names the file and the reason).
 */
export async function createMtlsAgent (options: MtlsAgentOptions): Promise<MtlsAgent> {
  checkAgentOptions(options) // before reading any file; the agent checks them again, for `new MtlsAgent` users
  const input: MaterialInput = {}
  for (const key of MATERIAL_KEYS) if (options[key] !== undefined) (input as Record<string, unknown>)[key] = options[key]
  const source = await createMaterialSource(input, { side: 'client', watch: false })
  const mtlsAgent = new MtlsAgent(source, options)
  const watchOption = options.watch ?? source.current.files.length > 0
  if (watchOption !== false) source.watch(watchOption === true ? {} : watchOption)
  return mtlsAgent
}
