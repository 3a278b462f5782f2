import { createSecureContext, type TLSSocket } from 'node:tls'
import type { X509Certificate } from 'node:crypto'
import { VerificationError, materialTlsOptions, toPeerIdentity, type Material, type PeerIdentity } from 'mtls-core'
import { DEFAULT_MIN_VERSION, Trust, describeThrown, presentedChain, readCertificateFields, type KeyExchange } from 'mtls-core/internal'
import { buildConnector, errors } from 'undici'
import type { CheckedAgentOptions, MtlsAgentOptions } from './agent-options.js'
import { postQuantumProblem, translateConnectError, watchServerRefusal, type KeyInfo } from './connect-errors.js'
import { ServerUnauthorizedError } from './errors.js'
import { StapleChecker } from './ocsp.js'
import { recordServer } from './otel.js'
import { SessionCache, type CachedSession } from './session-cache.js'

export type Connector = buildConnector.connector
type ConnectorOptions = buildConnector.BuildOptions

/**
 * The TLS of an mTLS agent's connections, as undici's `connect` function: the client material (one secure
 * context per loaded material, shared by every connection), the server authorizer, and the session cache.
 * `connect` wraps undici's `buildConnector`; on a server it refuses, it destroys the socket and calls back
 * with the reason, never turning `rejectUnauthorized` off.
 */
export class MtlsConnector {
  readonly #options: Pick<MtlsAgentOptions, 'agent' | 'minVersion' | 'verifyHostname' | 'maxCachedSessions'>
  readonly #authorize: ((identity: PeerIdentity) => string | null) | null
  readonly #expected: string
  readonly #ecdhCurve: string | undefined
  /** The key exchange offered (configured), for the agent's status. */
  readonly keyExchange: KeyExchange
  // The group each connection agreed, read at its handshake (Node forgets it when the socket closes): kept with the
  // socket, so a span or a log line can read it for as long as it holds the socket.
  readonly #groups = new WeakMap<object, string | null>()
  /** The OCSP staples of the servers (`ocsp`), and what status() reports of them. */
  readonly staples: StapleChecker
  /** The group the latest connection agreed (`getEphemeralKeyInfo().name`), `null` before the first or when Node cannot name it. */
  lastGroup: string | null = null
  #connectOptions: ConnectorOptions
  #sessions: SessionCache
  // With trust kept by SPIFFE trust domain: the trust that holds a server's chain to its own trust domain's bundle.
  #trustDomains: Trust | null

  constructor (options: MtlsAgentOptions, { authorizer, keyExchange, ecdhCurve, ocsp }: CheckedAgentOptions, material: Material) {
    this.#options = options
    this.#authorize = authorizer?.check ?? null
    this.#expected = authorizer?.expected ?? 'any server'
    this.#ecdhCurve = ecdhCurve
    this.keyExchange = keyExchange
    this.staples = new StapleChecker(ocsp, material)
    this.#connectOptions = this.#optionsFor(material)
    this.#trustDomains = trustDomainVerifier(material)
    this.#sessions = new SessionCache(options.maxCachedSessions ?? 100)
  }

  /**
   * Presents `material` on new connections. Throws, changing nothing, when Node cannot build a secure context
   * from it (a MaterialSource `apply` listener: the reload is refused and the old material stays).
   */
  use (material: Material): void {
    const trustDomains = trustDomainVerifier(material)
    this.#connectOptions = this.#optionsFor(material)
    this.#trustDomains = trustDomains
    this.staples.use(material)
    // Sessions resume with the certificate they were made with: new connections must show the new one.
    this.#sessions = new SessionCache(this.#options.maxCachedSessions ?? 100)
  }

  /** The key-exchange group `socket` (a connection of this connector) agreed at its handshake; `null` for another socket, or one Node cannot name. */
  groupOf (socket: object): string | null {
    return this.#groups.get(socket) ?? null
  }

  /** undici's connector: `new Agent({ connect })`, `new Pool(origin, { connect })`. */
  readonly connect: Connector = (options, callback) => {
    const origin = `${options.protocol}//${options.hostname}:${options.port}`
    // Bound to the server name, the origin and the authorizer that approved the session.
    const key = `${options.servername ?? options.hostname}|${origin}|${this.#expected}`
    const sessions = this.#sessions
    // The trust this connection is verified against, as its secure context: a reload during the handshake changes neither.
    const trustDomains = this.#trustDomains
    const cached = sessions.get(key)
    // undici's connector keeps its own session cache, which would also keep the tickets of servers we refused.
    const connect = buildConnector({ ...this.#connectOptions, maxCachedSessions: 0, ...(cached === undefined ? {} : { session: cached.session }) } as ConnectorOptions)
    let identity: PeerIdentity | null = null
    let until = 0
    const tickets: Buffer[] = []
    const keep = (session: Buffer): void => { if (identity !== null) sessions.set(key, { session, identity, until }) }
    const postQuantum = this.keyExchange.postQuantumRequired
    let stapled = (): Buffer | null => null
    const socket = (connect as unknown as (o: typeof options, cb: Parameters<Connector>[1]) => TLSSocket)(options, (error, connected) => {
      if (error !== null) {
        callback(translateConnectError(error, origin, this.#authorize !== null, postQuantum), null)
        return
      }
      const tlsSocket = connected as TLSSocket
      // Node 24 names every group; Node 22 names only classical ones (X25519, P-256, ffdhe) and answers {} for the rest.
      const keyInfo = tlsSocket.getEphemeralKeyInfo() as KeyInfo | null
      this.#groups.set(tlsSocket, keyInfo?.name ?? null)
      this.lastGroup = keyInfo?.name ?? null
      // A resumed session shows no certificate: the identity it was verified with stands for it. Otherwise the
      // server's certificate is read once (Node 20 hands its chain out once, and builds an object each time).
      const resumed = tlsSocket.isSessionReused() && cached !== undefined
      const certificate = resumed ? null : tlsSocket.getPeerX509Certificate() ?? null
      // OpenSSL offered only the hybrid groups, so nothing else can have been agreed: checked anyway, failing closed.
      const untrusted = (postQuantum ? postQuantumProblem(keyInfo, origin) : null) ?? (certificate === null ? null : trustDomainProblem(certificate, trustDomains))
      if (untrusted !== null) {
        tlsSocket.destroy()
        callback(translateConnectError(untrusted, origin, this.#authorize !== null, postQuantum), null)
        return
      }
      const verdict = this.#authorizeServer(certificate, cached)
      if (verdict.reason !== null) {
        tlsSocket.destroy()
        callback(new ServerUnauthorizedError(this.#expected, verdict.actual, verdict.reason === '' ? undefined : verdict.reason), null)
        return
      }
      const accept = ({ error, until: stapleUntil }: { error: Error | null, until: number }): void => {
        // The staple is checked asynchronously the first time (mtls-core/ocsp loads): the socket may be gone by then.
        const problem = error ?? (tlsSocket.destroyed ? new errors.SocketError('the connection closed while its OCSP staple was checked') : null)
        if (problem !== null) {
          tlsSocket.destroy()
          callback(problem, null)
          return
        }
        identity = verdict.identity
        // A resumed session stands for the staple it was verified with: it is not offered after that staple's nextUpdate.
        until = Math.min(verdict.until, stapleUntil)
        for (const ticket of tickets.splice(0)) keep(ticket)
        watchServerRefusal(tlsSocket)
        recordServer(tlsSocket, identity, keyInfo?.name ?? null) // for openTelemetryRequestHook
        callback(null, connected)
      }
      // A resumed session shows no certificate and gets no staple: it was checked when it was made.
      const stapleVerdict = certificate === null ? { error: null, until: Infinity } : this.staples.check(certificate, stapled(), origin)
      if (stapleVerdict instanceof Promise) stapleVerdict.then(accept, (err: unknown) => { accept({ error: err as Error, until: 0 }) })
      else accept(stapleVerdict)
    })
    stapled = this.staples.listen(socket)
    // TLS 1.3 tickets may arrive before or after the handshake callback; they are kept only for an authorized server.
    socket.on('session', (session: Buffer) => { identity === null ? tickets.push(session) : keep(session) })
  }

  // The server's certificate (`null`: a resumed session, whose identity it was verified with stands for it), checked again.
  #authorizeServer (certificate: X509Certificate | null, cached: CachedSession | undefined): { identity: PeerIdentity | null, until: number, actual: string, reason: string | null } {
    let actual = 'no certificate'
    try {
      let identity: PeerIdentity
      let until: number
      if (certificate === null) {
        identity = (cached as CachedSession).identity
        until = (cached as CachedSession).until
      } else {
        identity = toPeerIdentity(certificate)
        until = presentedChain(certificate).until
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
      secureContext: createSecureContext({ ...materialTlsOptions(material), minVersion: this.#options.minVersion ?? DEFAULT_MIN_VERSION, ...(this.#ecdhCurve === undefined ? {} : { ecdhCurve: this.#ecdhCurve }) }),
      rejectUnauthorized: true,
      // The server's OCSP staple (status_request), checked after the handshake: see ocsp.ts.
      requestOCSP: this.staples.mode !== 'off',
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

function trustDomainVerifier (material: Material): Trust | null {
  return material.trustDomains === null ? null : Trust.forMaterial(material)
}

// OpenSSL verified the server's chain against every trust bundle at once; it must end in its own trust domain's:
// one bundle holding every root, a look at its SPIFFE ID; federated bundles, the root its chain ends at (through the
// CAs of the trust whose keys signed it, else through what the server sent). A resumed session was checked when it
// was made (sessions are kept per material).
function trustDomainProblem (certificate: X509Certificate, trust: Trust | null): Error | null {
  if (trust === null) return null
  try {
    const { trustDomain, refusal } = trust.peerTrustDomain(readCertificateFields(certificate.raw))
    if (refusal !== null || trustDomain === trust.soleTrustDomain) return refusal === null ? null : new VerificationError(refusal.code, refusal.message)
    const chain = trust.chainFromTrust(certificate.raw) ?? trust.presentedChain([certificate.raw, ...presentedChain(certificate).intermediates])
    if (chain === null) return new VerificationError('UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'the server\'s chain ends at no root of the trust')
    const problem = trust.trustDomainRefusal(chain)
    return problem === null ? null : new VerificationError(problem.code, problem.message)
  } catch (err) {
    return err as Error
  }
}
