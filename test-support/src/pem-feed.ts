import { EventEmitter } from 'node:events'

type Pem = string | Buffer

/** What a PemFeed serves: mtls-core MaterialInput in PEM form. */
export interface PemFeedMaterial {
  cert: Pem
  key: Pem
  ca?: Pem | Pem[]
  trustDomains?: Record<string, Pem | Pem[]>
  crl?: Pem | Pem[]
}

/**
 * A material feed (mtls-core's MaterialFeed) whose material the test pushes: what an X509Source does, without a
 * Workload API. `push` announces new material; `fail` reports a failure (the material stays), as a feed does.
 */
export class PemFeed extends EventEmitter {
  #material: PemFeedMaterial
  #lastError: Error | null = null
  #lastUpdate = new Date()
  #closed = false
  connected = true
  reconnects = 0
  readonly endpoint: string

  constructor (material: PemFeedMaterial, endpoint = 'test://pem-feed') {
    super()
    this.#material = material
    this.endpoint = endpoint
  }

  get materialInput (): PemFeedMaterial {
    if (this.#closed) throw Object.assign(new Error('the feed is closed'), { code: 'ERR_TEST_FEED_CLOSED' })
    return this.#material
  }

  push (material: PemFeedMaterial): void {
    this.#material = material
    this.#lastUpdate = new Date()
    this.emit('update')
  }

  fail (error: Error): void {
    this.#lastError = error
    if (this.listenerCount('error') > 0) this.emit('error', error)
  }

  close (): void {
    this.#closed = true
  }

  status (): { endpoint: string, connected: boolean, lastUpdate: Date, reconnects: number, lastError: Error | null, closed: boolean } {
    return { endpoint: this.endpoint, connected: this.connected, lastUpdate: this.#lastUpdate, reconnects: this.reconnects, lastError: this.#lastError, closed: this.#closed }
  }
}
