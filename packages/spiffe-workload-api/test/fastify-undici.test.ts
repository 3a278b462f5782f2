// A Fastify server (fastify-mtls, identity, authz) and an undici-mtls client that both take their identities from
// the Workload API, over real sockets: rotations under load, a replaced trust bundle, the agent gone and back,
// and federated trust domains.
import { createServer as createTlsServer, type TLSSocket } from 'node:tls'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { fastifyMtls, loadServerTls } from 'fastify-mtls'
import { fastifyMtlsIdentity } from 'fastify-mtls-identity'
import { fastifyMtlsAuthz } from 'fastify-mtls-authz'
import { createRootCa, createTestPki, type CertificateAuthority, type IssuedCertificate } from 'mtls-pki'
import { capturedLogger, hangLimit, startFastifyServer, until, type Teardown } from 'mtls-test-support'
import { request } from 'undici'
import { createMtlsAgent, type MtlsAgent } from 'undici-mtls'
import { createX509Source, type X509Source } from '../src/index.js'
import type { TestWorkloadApi as WorkloadApi } from '../src/testing.js'
import { TestWorkloadApi, pemToDer, svidMessage } from './workload-api-server.js'

const PAYMENT = 'spiffe://mycompany.com/production/payment-service'
const ORDER = 'spiffe://mycompany.com/production/order-service'
const PARTNER = 'spiffe://partner.example/production/order-service'
const FAST = { initialMs: 20, maxMs: 200 }
const pki = await createTestPki()
const partner = await createTestPki({ trustDomain: 'partner.example' })
// Hang limits: on a quiet machine the file takes a few seconds, its longest subtest two or three.
t.setTimeout(hangLimit(180_000))
const LIMIT = { timeout: hangLimit(60_000) }

const policy = {
  acl: [
    { identities: [ORDER], roles: ['payments:charge'] },
    // Per server: only our own trust domain holds roles; a federated identity gets none.
    { identities: ['spiffe://mycompany.com/**'], roles: ['payments:read'] }
  ],
  defaultPolicy: 'deny' as const
}

async function source (t: Teardown, api: WorkloadApi, pick: string): Promise<X509Source> {
  const created = await createX509Source({ endpoint: api.endpoint, pick, backoff: FAST, timeoutMs: hangLimit(30_000) })
  t.teardown(() => created.close())
  return created
}

/** payment-service on its SVID from the Workload API, with the routes the tests call. */
async function paymentService (t: Teardown, x509Source: X509Source, mode: 'require' | 'optional' = 'require') {
  const log = capturedLogger('debug')
  const tls = await loadServerTls({ x509Source, mode })
  const clientFingerprints = new Set<string>()
  const openConnections = new Map<TLSSocket, string>()
  const server = await startFastifyServer(t, { https: tls.httpsOptions, fastify: { logger: log.logger } }, async app => {
    await app.register(fastifyMtls, { tls })
    await app.register(fastifyMtlsIdentity)
    await app.register(fastifyMtlsAuthz, { policy })
    app.get('/whoami', { config: { mtls: { roles: ['payments:read'] } } }, async request => {
      clientFingerprints.add(request.peerIdentity?.fingerprint256 as string)
      return { id: request.peerIdentity?.id }
    })
    // Per route: a partner's services, by trust domain (go-spiffe's AuthorizeMemberOf).
    app.get('/partner', { config: { mtls: { allow: ['spiffe://partner.example/**'] } } }, async request => ({ id: request.peerIdentity?.id }))
    app.get('/peer', { config: { mtls: { public: true } } }, async request => ({ id: request.peerIdentity?.id ?? null, error: request.peerCertificateError }))
    app.server.on('secureConnection', (socket: TLSSocket) => {
      const fingerprint = socket.getPeerX509Certificate()?.fingerprint256
      if (fingerprint === undefined) return
      openConnections.set(socket, fingerprint)
      socket.once('close', () => openConnections.delete(socket))
    })
  })
  return { ...server, log, clientFingerprints, openConnections }
}

/** order-service's agent on its SVID from the Workload API; records every server certificate it accepted. */
async function orderAgent (t: Teardown, x509Source: X509Source): Promise<{ agent: MtlsAgent, serverFingerprints: Set<string> }> {
  const serverFingerprints = new Set<string>()
  const agent = await createMtlsAgent({
    x509Source,
    verifyHostname: false,
    server: identity => {
      serverFingerprints.add(identity.fingerprint256)
      return identity.id === PAYMENT
    },
    agent: { connections: 4 }
  })
  t.teardown(() => agent.close())
  return { agent, serverFingerprints }
}

async function issue (ca: CertificateAuthority, spiffeId: string): Promise<IssuedCertificate> {
  return await ca.issue({ spiffeId, usage: 'both' })
}

/** Bounded load: `workers` loops of GET /whoami until stopped (or a hang limit, or 50,000 requests); one request in four closes its connection. */
function load (url: string, agent: MtlsAgent, workers = 4) {
  const state = { ok: 0, failed: [] as string[], stopped: false }
  const deadline = Date.now() + hangLimit(120_000)
  const worker = async (): Promise<void> => {
    for (let i = 0; !state.stopped && Date.now() < deadline && state.ok + state.failed.length < 50_000; i++) {
      try {
        const response = await request(`${url}/whoami`, { dispatcher: agent, reset: i % 4 === 0 })
        await response.body.text()
        if (response.statusCode === 200) state.ok++
        else state.failed.push(`HTTP ${response.statusCode}`)
      } catch (err) {
        state.failed.push(`${(err as { code?: string }).code ?? ''} ${(err as Error).message}`)
      }
    }
  }
  const running = Promise.all(Array.from({ length: workers }, worker))
  return { state, stop: async () => { state.stopped = true; await running } }
}

// The rotations: from the old CA, then with the new root beside the old, then SVIDs from the new CA, then, once no
// connection made with an old-CA certificate is open (as when the last old SVID has expired), the old root gone.
// One or two rotations per step: more would repeat what these prove.
const ROTATIONS = 6
const BOTH_ROOTS_FROM = 3
const NEW_CA_FROM = 4
const NEW_ROOT_ALONE_FROM = 6

t.test(`${ROTATIONS} rotations of both SVIDs and one replaced trust bundle under load: no request fails, new connections show the new SVIDs`, LIMIT, async t => {
  const api = await TestWorkloadApi.start(t)
  const newRoot = await createRootCa({ commonName: 'replacement root' })
  const newIntermediate = await newRoot.createIntermediate()
  const oldBundle = Buffer.concat(pemToDer(pki.ca))
  const newBundle = Buffer.concat(pemToDer(newRoot.certificate))
  const push = async (ca: CertificateAuthority, bundle: Buffer) => {
    const [server, client] = [await issue(ca, PAYMENT), await issue(ca, ORDER)]
    api.setX509({ svids: [{ ...svidMessage(PAYMENT, server), bundle }, { ...svidMessage(ORDER, client), bundle }] })
    return { server, client }
  }
  await push(pki.intermediate, oldBundle)
  const serverSource = await source(t, api, PAYMENT)
  const clientSource = await source(t, api, ORDER)
  const service = await paymentService(t, serverSource)
  const { agent, serverFingerprints } = await orderAgent(t, clientSource)
  const running = load(service.url, agent)
  const oldClientFingerprints = new Set<string>()

  for (let rotation = 1; rotation <= ROTATIONS; rotation++) {
    if (rotation === NEW_ROOT_ALONE_FROM) await until(() => [...service.openConnections.values()].every(fp => !oldClientFingerprints.has(fp)), 'the old-CA connections to close')
    const bundle = rotation < BOTH_ROOTS_FROM ? oldBundle : rotation < NEW_ROOT_ALONE_FROM ? Buffer.concat([oldBundle, newBundle]) : newBundle
    const { server, client } = await push(rotation < NEW_CA_FROM ? pki.intermediate : newIntermediate, bundle)
    if (rotation < NEW_CA_FROM) oldClientFingerprints.add(client.fingerprint256)
    await until(() => service.app.mtls.status().certificate.fingerprint256 === server.fingerprint256, `rotation ${rotation} on the server`)
    await until(() => agent.status().certificate.fingerprint256 === client.fingerprint256, `rotation ${rotation} on the client`)
    await until(() => service.clientFingerprints.has(client.fingerprint256), `a connection with client SVID ${rotation}`)
    await until(() => serverFingerprints.has(server.fingerprint256), `a connection to server SVID ${rotation}`)
  }
  await running.stop()
  t.same(running.state.failed, [], 'no request failed')
  t.same(service.app.mtls.stats().failures, Object.fromEntries(Object.keys(service.app.mtls.stats().failures).map(k => [k, 0])), 'no handshake refused')
  t.same(service.log.lines.filter(line => (line.level as number) >= 40), [], 'nothing went wrong')
  t.ok(running.state.ok > 100, `requests were made throughout (${running.state.ok})`)
  t.equal(service.app.mtls.status().authorities.length, 1, 'the server trusts the new root alone')
  t.equal(service.app.mtls.status().authorities[0]?.fingerprint256, newRoot.fingerprint256)
  t.equal(agent.status().authorities[0]?.fingerprint256, newRoot.fingerprint256, 'so does the client')
  t.ok(service.app.mtls.stats().reloads.succeeded >= ROTATIONS, 'each rotation went through the reload protocol')
  t.equal(service.app.mtls.stats().reloads.failed, 0)
  const status = service.app.mtls.status().x509Source
  t.match(status, { endpoint: api.endpoint, connected: true, lastError: null, closed: false })
  t.ok(status?.lastUpdate instanceof Date)
  t.match(agent.status().x509Source, { endpoint: api.endpoint, connected: true })
  t.equal(service.log.lines.filter(line => line.msg === 'TLS material reloaded').length, ROTATIONS)
})

t.test('the agent goes away and comes back: the service keeps serving, reconnects, and says so in status and logs', LIMIT, async t => {
  const api = await TestWorkloadApi.start(t)
  const first = { server: await issue(pki.intermediate, PAYMENT), client: await issue(pki.intermediate, ORDER) }
  api.setX509({ svids: [svidMessage(PAYMENT, first.server), svidMessage(ORDER, first.client)] })
  const serverSource = await source(t, api, PAYMENT)
  const clientSource = await source(t, api, ORDER)
  const service = await paymentService(t, serverSource)
  const { agent } = await orderAgent(t, clientSource)
  const running = load(service.url, agent, 2)

  api.stop()
  await until(() => service.app.mtls.status().x509Source?.connected === false, 'the server to see the agent gone')
  await until(() => agent.status().x509Source?.lastError !== null, 'the client to see the agent gone')
  const during = running.state.ok
  await until(() => running.state.ok > during + 50, 'requests while the agent is away (new connections included)')
  t.match(service.app.mtls.status().x509Source?.lastError, { code: 'ERR_MTLS_WORKLOAD_UNAVAILABLE' })
  t.equal(service.app.mtls.status().certificate.fingerprint256, first.server.fingerprint256, 'the SVID in force stays')
  t.ok(service.log.lines.some(line => line.level === 40 && String(line.msg).startsWith('x509Source: ') && line.code === 'ERR_MTLS_WORKLOAD_UNAVAILABLE'), 'a warning says the source is failing')

  const second = { server: await issue(pki.intermediate, PAYMENT), client: await issue(pki.intermediate, ORDER) }
  api.setX509({ svids: [svidMessage(PAYMENT, second.server), svidMessage(ORDER, second.client)] })
  await api.listen()
  await until(() => service.app.mtls.status().certificate.fingerprint256 === second.server.fingerprint256, 'the server to take the SVID pushed after the agent came back')
  await until(() => agent.status().certificate.fingerprint256 === second.client.fingerprint256, 'the client likewise')
  await running.stop()
  t.same(running.state.failed, [], 'no request failed while the agent was away')
  const status = service.app.mtls.status().x509Source
  t.match(status, { connected: true, lastError: null })
  t.ok((status?.reconnects ?? 0) >= 1, 'reconnects are counted')
  t.ok(service.log.lines.some(line => line.level === 30 && /^x509Source: receiving again after \d+ failed attempts?$/.test(String(line.msg))), 'an info line says it is back')
  const warnings = service.log.lines.filter(line => line.level === 40 && String(line.msg).startsWith('x509Source: '))
  t.equal(warnings.length, 1, 'one warning per outage, however many retries failed')
})

t.test('a federated trust domain pushed by the agent is trusted from the next connection, for its own SPIFFE IDs only, and removed the same way', LIMIT, async t => {
  const api = await TestWorkloadApi.start(t)
  const svids = [svidMessage(PAYMENT, await issue(pki.intermediate, PAYMENT)), svidMessage(ORDER, await issue(pki.intermediate, ORDER))]
  api.setX509({ svids })
  const service = await paymentService(t, await source(t, api, PAYMENT))
  const partnerCall = async (issued: IssuedCertificate, path: string) => {
    const agent = await createMtlsAgent({ cert: issued.chain, key: issued.key, ca: [pki.ca, partner.ca], verifyHostname: false, server: PAYMENT })
    try {
      const response = await request(`${service.url}${path}`, { dispatcher: agent })
      return { status: response.statusCode, body: await response.body.json() as { id?: string } }
    } catch (err) {
      return { status: 0, error: (err as { code?: string }).code }
    } finally {
      await agent.close()
    }
  }
  // A certificate from the partner's CA that claims our trust domain: the partner may not speak for us.
  const forged = await partner.intermediate.issue({ spiffeId: ORDER, usage: 'both' })

  t.match(await partnerCall(partner.orderService, '/partner'), { status: 0 }, 'not federated yet: refused at the handshake')
  api.setX509({ svids, federatedBundles: { 'spiffe://partner.example': Buffer.concat(pemToDer(partner.ca)) } })
  await until(() => service.app.mtls.status().authorities.length === 2, 'the federated bundle')
  t.match(await partnerCall(partner.orderService, '/partner'), { status: 200, body: { id: PARTNER } }, 'the next connection is trusted')
  t.match(await partnerCall(partner.orderService, '/whoami'), { status: 403 }, 'a federated identity holds none of our roles')
  const refusedBefore = service.app.mtls.stats().failures.unknown_ca
  t.match(await partnerCall(forged, '/whoami'), { status: 0 }, 'the partner\'s CA cannot speak for our trust domain')
  t.equal(service.app.mtls.stats().failures.unknown_ca, refusedBefore + 1, 'counted as a certificate from a CA not trusted for it')

  // An empty bundle for a trust domain trusts nothing there, and refuses nothing else.
  api.setX509({ svids, federatedBundles: { 'spiffe://partner.example': Buffer.alloc(0) } })
  await until(() => service.app.mtls.status().authorities.length === 1, 'the federated bundle emptied')
  t.equal(service.app.mtls.stats().reloads.failed, 0, 'an empty bundle is no reason to refuse an update')
  t.match(await partnerCall(partner.orderService, '/partner'), { status: 0 }, 'emptied: refused from the next connection')
  api.setX509({ svids, federatedBundles: { 'spiffe://partner.example': Buffer.concat(pemToDer(partner.ca)) } })
  await until(() => service.app.mtls.status().authorities.length === 2, 'the federated bundle back')
  api.setX509({ svids })
  await until(() => service.app.mtls.status().authorities.length === 1, 'the federated bundle removed')
  t.match(await partnerCall(partner.orderService, '/partner'), { status: 0 }, 'removed: refused from the next connection')
})

t.test('optional mode: a federated CA\'s certificate for our trust domain reaches the routes unverified, with the reason', LIMIT, async t => {
  const api = await TestWorkloadApi.start(t)
  api.setX509({
    svids: [svidMessage(PAYMENT, await issue(pki.intermediate, PAYMENT))],
    federatedBundles: { 'partner.example': Buffer.concat(pemToDer(partner.ca)) }
  })
  const service = await paymentService(t, await source(t, api, PAYMENT), 'optional')
  const forged = await partner.intermediate.issue({ spiffeId: ORDER, usage: 'both' })
  for (const [issued, expected] of [
    [forged, { id: null, error: 'ERR_MTLS_TRUST_DOMAIN_UNTRUSTED' }],
    [partner.orderService, { id: PARTNER, error: null }]
  ] as const) {
    const agent = await createMtlsAgent({ cert: issued.chain, key: issued.key, ca: [pki.ca, partner.ca], verifyHostname: false, server: PAYMENT })
    t.teardown(() => agent.close())
    const response = await request(`${service.url}/peer`, { dispatcher: agent })
    t.same(await response.body.json(), expected)
    const denied = await request(`${service.url}/whoami`, { dispatcher: agent })
    await denied.body.text()
    t.equal(denied.statusCode, issued === forged ? 401 : 403, issued === forged ? 'no identity: 401' : 'a partner identity: 403')
  }
})

t.test('the client: a server certificate from a federated CA that claims our trust domain is refused', LIMIT, async t => {
  const api = await TestWorkloadApi.start(t)
  api.setX509({
    svids: [svidMessage(ORDER, await issue(pki.intermediate, ORDER))],
    federatedBundles: { 'spiffe://partner.example': Buffer.concat(pemToDer(partner.ca)) }
  })
  const { agent } = await orderAgent(t, await source(t, api, ORDER))
  const forged = await partner.intermediate.issue({ spiffeId: PAYMENT, usage: 'both' })
  const server = createTlsServer({ cert: forged.chain, key: forged.key, minVersion: 'TLSv1.3' }, socket => socket.end('HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n'))
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => server.close())
  const { port } = server.address() as AddressInfo
  await t.rejects(request(`https://127.0.0.1:${port}/`, { dispatcher: agent }), { code: 'ERR_MTLS_SERVER_CERT_UNTRUSTED', message: /ERR_MTLS_TRUST_DOMAIN_UNTRUSTED/ })
})
