import type { PeerIdentity } from 'mtls-core'

/** A TLS session with the identity its server proved when it was made: a resumed session shows no certificate. */
export interface CachedSession {
  readonly session: Buffer
  readonly identity: PeerIdentity
  /** When the server's chain (its leaf and the intermediates it sent) expires, in ms. */
  readonly until: number
}

/**
 * TLS sessions of servers that were authorized, by server name, origin and the authorizer that approved them,
 * least recently stored first out. Only this agent's authorized connections put sessions in (undici's own
 * connector cache would also keep the tickets of servers it refused), and a session is not offered once the
 * server certificate, or an intermediate it came with, has expired.
 */
export class SessionCache {
  readonly #entries = new Map<string, CachedSession>()
  readonly #limit: number

  constructor (limit: number) {
    this.#limit = limit
  }

  get (key: string, now = Date.now()): CachedSession | undefined {
    const entry = this.#entries.get(key)
    if (entry === undefined || entry.until > now) return entry
    this.#entries.delete(key)
    return undefined
  }

  set (key: string, entry: CachedSession): void {
    if (this.#limit === 0) return
    this.#entries.delete(key)
    this.#entries.set(key, entry)
    if (this.#entries.size > this.#limit) this.#entries.delete(this.#entries.keys().next().value as string)
  }
}
