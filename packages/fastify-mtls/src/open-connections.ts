import type { TLSSocket } from 'node:tls'

/**
 * The connections to re-verify when trust changes. No listener per connection: closed ones are swept out
 * when the set has doubled since the last sweep, so it stays about the size of what is open.
 */
export class OpenConnections {
  readonly #sockets = new Set<TLSSocket>()
  #sweepAt = 1024

  add (socket: TLSSocket): void {
    this.#sockets.add(socket)
    if (this.#sockets.size < this.#sweepAt) return
    this.#sweep()
    this.#sweepAt = Math.max(1024, 2 * this.#sockets.size)
  }

  /** The connections still open. */
  open (): TLSSocket[] {
    this.#sweep()
    return [...this.#sockets]
  }

  #sweep (): void {
    for (const socket of this.#sockets) if (socket.destroyed) this.#sockets.delete(socket)
  }
}
