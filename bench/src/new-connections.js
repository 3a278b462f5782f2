// New connections per second: parallel loops of connect, one request, close. autocannon's reconnect mode
// counts nothing and cannot resume sessions, so this small client does it, with one shared secure
// context, checking isSessionReused() to tell full handshakes from resumed ones.
import { connect } from 'node:net'
import * as tls from 'node:tls'

const REQUEST = 'GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n'

/** The client's secure context for one set of credentials (`cert` and `key` optional: a TLS-only client). */
export function clientContext (credentials) {
  return tls.createSecureContext({ ca: credentials.ca, ...(credentials.cert === undefined ? {} : { cert: credentials.cert, key: credentials.key }), minVersion: 'TLSv1.3' })
}

/**
 * Runs `concurrency` loops for `durationMs`, or until `maxConnections` were made (either bound or both), and counts them.
 * `contexts` (prepared with clientContext): connection i presents the i-th one's certificate, each once, so the server
 * sees a certificate it has not seen on every connection (at most `contexts.length` connections). `requestOCSP`: each
 * connection asks for the server's stapled OCSP response (status_request); `stapled` counts those that got one.
 */
export async function newConnections ({ port, secure, credentials, contexts, requestOCSP = false, resume, durationMs = Infinity, maxConnections = Infinity, concurrency = 8 }) {
  const context = secure && contexts === undefined ? clientContext(credentials) : null
  const limit = Math.min(maxConnections, contexts?.length ?? Infinity)
  const counts = { completed: 0, full: 0, resumed: 0, errors: 0, stapled: 0 }
  const started = Date.now()
  const end = started + durationMs
  let made = 0
  let session
  const once = index => new Promise(resolve => {
    let answered = false
    const socket = secure
      ? tls.connect({ host: '127.0.0.1', port, servername: 'localhost', secureContext: contexts?.[index] ?? context, requestOCSP, ...(resume && session !== undefined ? { session } : {}) })
      : connect({ host: '127.0.0.1', port })
    // Node emits it once per handshake that asked, with the staple or undefined; a resumed TLS 1.3 session carries none.
    if (requestOCSP) socket.once('OCSPResponse', response => { if (response?.length > 0) counts.stapled++ })
    socket.once(secure ? 'secureConnect' : 'connect', () => {
      if (secure) counts[socket.isSessionReused() ? 'resumed' : 'full']++
      socket.write(REQUEST)
    })
    if (secure && resume) socket.on('session', s => { session = s })
    socket.on('data', () => { answered = true })
    socket.on('error', () => {})
    socket.on('close', () => {
      if (answered) counts.completed++
      else counts.errors++
      resolve()
    })
  })
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (Date.now() < end && made < limit) await once(made++)
  }))
  return { perSecond: counts.completed / ((Date.now() - started) / 1000), ...counts }
}
