// New connections per second: parallel loops of connect, one request, close. autocannon's reconnect mode
// counts nothing and cannot resume sessions, so this small client does it, with one shared secure
// context, checking isSessionReused() to tell full handshakes from resumed ones.
import { connect } from 'node:net'
import * as tls from 'node:tls'

const REQUEST = 'GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n'

/** Runs `concurrency` loops for `durationMs`, or until `maxConnections` were made (either bound or both), and counts them. */
export async function newConnections ({ port, secure, credentials, resume, durationMs = Infinity, maxConnections = Infinity, concurrency = 8 }) {
  const context = secure ? tls.createSecureContext({ ca: credentials.ca, ...(credentials.cert === undefined ? {} : { cert: credentials.cert, key: credentials.key }), minVersion: 'TLSv1.3' }) : null
  const counts = { completed: 0, full: 0, resumed: 0, errors: 0 }
  const started = Date.now()
  const end = started + durationMs
  let made = 0
  let session
  const once = () => new Promise(resolve => {
    let answered = false
    const socket = secure
      ? tls.connect({ host: '127.0.0.1', port, servername: 'localhost', secureContext: context, ...(resume && session !== undefined ? { session } : {}) })
      : connect({ host: '127.0.0.1', port })
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
    while (Date.now() < end && made < maxConnections) {
      made++
      await once()
    }
  }))
  return { perSecond: counts.completed / ((Date.now() - started) / 1000), ...counts }
}
