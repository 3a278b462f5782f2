// The attack: a material feed (x509Source) that misbehaves: status() that returns nothing or throws, an 'error'
// event with nothing or a string in it. Before, status() returning nothing made app.mtls.status() throw, and a
// status() that throws, or an 'error' with nothing in it, threw inside the feed's own event: out of whatever
// emitted it (for a Workload API source, a gRPC callback: the process). The server must keep serving and say what
// it could.
import t from 'tap'
import { createTestPki } from 'mtls-pki'
import { PemFeed, capturedLogger } from 'mtls-test-support'
import { attempt, startServer } from '../helpers.js'

const pki = await createTestPki()
const client = { chain: pki.orderService.chain, key: pki.orderService.key, ca: pki.ca }

t.test('a feed whose status() returns nothing or throws, and whose errors carry nothing: the server serves and reports', async t => {
  const feed = new PemFeed({ cert: pki.server.chain, key: pki.server.key, trustDomains: { 'mycompany.com': pki.ca } })
  const log = capturedLogger('debug')
  const { app, port } = await startServer(t, { x509Source: feed }, {}, { logger: log.logger })
  for (const [what, status] of [['returns nothing', () => undefined], ['throws', () => { throw new Error('status broken') }]] as const) {
    feed.status = status as unknown as PemFeed['status']
    t.match(app.mtls.status().x509Source, { connected: false, lastError: { code: 'ERR', message: /^the feed's status\(\) threw: / } }, `status() ${what}: status still answers`)
    t.doesNotThrow(() => feed.emit('error'), `status() ${what}: an error event with nothing in it`)
    t.doesNotThrow(() => feed.emit('error', 'agent gone'), `status() ${what}: an error event with a string`)
  }
  t.ok(log.lines.some(line => line.level === 40 && line.code === 'ERR' && String(line.msg).startsWith('x509Source: ')), 'the outage is logged')
  t.ok(log.lines.some(line => String(line.msg).includes('agent gone')), 'with what the feed said')
  t.equal((await attempt(port, client)).status, 200, 'and the server serves')
})
