import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import * as tls from 'node:tls'

/** What one side of a real TLS connection saw. */
export interface SideResult {
  authorized: boolean
  authorizationError: string | null
  /** Serial number of the certificate the other side presented, if any. */
  peerSerial: string | null
  /** The error that ended the connection, if one did. */
  errorCode: string | null
  /** What the other side sent (the server sends `hello\n` once it accepts the connection). */
  received: string
}

/**
 * Runs one real TLS connection on 127.0.0.1 (port 0; `::1` when the client's host is) and reports what server and client each saw.
 * The client sends one line and waits for the server's answer, so that TLS 1.3's late client-certificate
 * alerts arrive before it reports.
 */
export async function connectOnce (serverOptions: tls.TlsOptions, clientOptions: tls.ConnectionOptions): Promise<{ server: SideResult | null, client: SideResult }> {
  let server: SideResult | null = null
  const tlsServer = tls.createServer({ minVersion: 'TLSv1.3', ...serverOptions }, socket => {
    server = sideOf(socket)
    socket.on('error', () => {})
    socket.end('hello\n')
  })
  tlsServer.on('tlsClientError', () => {})
  tlsServer.listen(0, clientOptions.host ?? '127.0.0.1')
  await once(tlsServer, 'listening')
  const { port } = tlsServer.address() as AddressInfo
  try {
    const client = await new Promise<SideResult>(resolve => {
      const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ...clientOptions })
      let result: SideResult | null = null
      socket.on('secureConnect', () => { result = sideOf(socket) })
      let errorCode: string | null = null
      let received = ''
      socket.on('error', (err: NodeJS.ErrnoException) => { errorCode = err.code ?? err.message })
      socket.on('data', (chunk: Buffer) => { received += chunk.toString() })
      socket.on('close', () => {
        resolve({ ...(result ?? { authorized: false, authorizationError: null, peerSerial: null }), errorCode, received })
      })
    })
    return { server, client }
  } finally {
    tlsServer.close()
  }
}

function sideOf (socket: tls.TLSSocket): SideResult {
  const peer = socket.getPeerX509Certificate()
  return {
    authorized: socket.authorized,
    authorizationError: socket.authorizationError === undefined || socket.authorizationError === null ? null : String(socket.authorizationError),
    peerSerial: peer?.serialNumber ?? null,
    errorCode: null,
    received: ''
  }
}
