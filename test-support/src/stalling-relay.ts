import net from 'node:net'
import type { Teardown } from './teardown.js'

/**
 * A TCP relay on 127.0.0.1 to `port` that stalls a TLS handshake until `release()`: `'client'` passes the client's
 * first flight (the ClientHello) and holds the rest of what it sends; `'server'` holds everything the server sends.
 * For reloads that land mid-handshake. Closed at teardown.
 */
export async function stallingRelay (t: Teardown, port: number, hold: 'client' | 'server'): Promise<{ port: number, release: () => void }> {
  let release!: () => void
  const released = new Promise<void>(resolve => { release = resolve })
  const relay = net.createServer(client => {
    const upstream = net.connect(port, '127.0.0.1')
    if (hold === 'client') {
      let first = true
      client.on('data', chunk => {
        if (first) upstream.write(chunk)
        else released.then(() => upstream.write(chunk)).catch(() => {})
        first = false
      })
      upstream.pipe(client)
    } else {
      client.pipe(upstream)
      upstream.on('data', chunk => { released.then(() => client.write(chunk)).catch(() => {}) })
    }
    client.on('error', () => {})
    upstream.on('error', () => {})
    client.on('close', () => upstream.destroy())
    upstream.on('close', () => client.destroy())
  })
  await new Promise<void>(resolve => relay.listen(0, '127.0.0.1', resolve))
  t.teardown(() => relay.close())
  return { port: (relay.address() as net.AddressInfo).port, release }
}
