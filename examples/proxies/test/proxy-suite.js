// What every proxy is put through, in both deployment shapes and with each header format it produces: who the
// service sees for each client certificate of the mtls-pki test set, that clients cannot smuggle the forwarding
// header past the proxy nor around it, and that a proxy reload and a service certificate rotation lose no request.
// Each proxy's test file says how to start and reload that proxy and how it refuses a certificate.
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { Agent, request } from 'undici'
import { loadDuring, REQUEST_LIMIT_MS } from './load.js'
import { SERVER_NAME, spiffe, writeProxyPki } from './pki-files.js'
import { accepts, freePort, makeRunDir, portTaken, renderConfig, servesCertificate } from './proxy-process.js'
import { forwardedSetting, ROUTES, startService } from './service.js'

export const SHAPES = Object.freeze({
  mtls: 'proxy -> service over mTLS, trusted by its certificate (the default)',
  http: 'proxy -> service over plain HTTP, trusted by its address'
})

// What the service answers each client of the test set, through a proxy that lets it through: the identity the
// route sees (or why there is none), then GET /api/payments (payments:read) and POST /api/payments/charge
// (payments:charge). `refused`: a proxy that verifies clients refuses it; `crl`: only one that checks CRLs does.
const CLIENTS = [
  { name: 'orderService', id: spiffe('production/order-service'), read: 200, charge: 200 },
  { name: 'inventoryService', id: spiffe('production/inventory-service'), read: 200, charge: 403 },
  { name: 'no certificate', cert: null, error: 'ERR_MTLS_FORWARDED_HEADER_MISSING' },
  { name: 'noSan', id: 'cn:no-san-service', read: 403, charge: 403 },
  // The DNS SAN that reads like a SPIFFE ID stays a DNS name: no SPIFFE pattern of the policy matches it.
  { name: 'sanInjection', id: `dns:evil.example, URI:${spiffe('production/admin')}`, read: 403, charge: 403 },
  // OpenSSL (nginx, HAProxy) and Go (Caddy) accept these three; the service does not.
  { name: 'twoUriSans', error: 'ERR_MTLS_SVID_URI_SAN_COUNT' },
  { name: 'invalidSpiffeId', error: 'ERR_MTLS_SVID_INVALID_SPIFFE_ID' },
  { name: 'caAsLeaf', error: 'ERR_MTLS_CERTIFICATE_IS_CA' },
  { name: 'revoked', error: 'CERT_REVOKED', refused: 'crl' },
  // Revoked in its CRL shard; the other shard is newer. OpenSSL reads the shard in scope, and so must the service.
  { name: 'revokedInShard', error: 'CERT_REVOKED', refused: 'crl' },
  { name: 'inShardB', id: spiffe('production/in-shard-b'), read: 200, charge: 403 },
  { name: 'expired', refused: true },
  { name: 'notYetValid', refused: true },
  { name: 'otherCa', refused: true },
  { name: 'serverOnly', refused: true }
]

const pemBody = pem => pem.replace(/-----(BEGIN|END) CERTIFICATE-----/g, '').replace(/\s+/g, '')

/** A certificate as a header of `format` carries it. */
export function forwardedValue (format, certificatePem) {
  switch (format) {
    case 'pem-url-encoded': return encodeURIComponent(certificatePem)
    case 'base64-der': return pemBody(certificatePem)
    case 'rfc9440': return `:${pemBody(certificatePem)}:`
    default: throw new Error(`no forged value for format ${format}`)
  }
}

/**
 * The proxy's tests. `proxy` says:
 * - `name`, `templates: { mtls, http }` (the example configs of each shape), `configName` (the rendered file's name),
 *   `extraPorts` (placeholders besides LISTEN_PORT that need a free port);
 * - `formats`: `[{ label, forwarded }]`, each header format the proxy sends, as fastify-mtls-identity's `forwarded`;
 * - `refusal`: how it refuses a client certificate that does not verify, `{ status }` (an answer of its own) or
 *   `'handshake'`; `checksCrl`: whether it refuses a revoked one;
 * - `start({ config, runDir, values, ready })` (spawnProxy's `ready`) resolving with `{ reload() -> proof, stop() }`; `reloadHow`;
 *   `reloadClosesIdleConnections`: whether its reload may close a keep-alive connection under a request being sent.
 */
export async function proxySuite (t, proxy) {
  const { dir, remove } = await makeRunDir(proxy.name)
  const agents = []
  t.teardown(async () => {
    await Promise.all(agents.map(agent => agent.close().catch(() => {})))
    await remove()
  })
  const files = await writeProxyPki(join(dir, 'certs'), proxy.name)
  const agent = ({ localAddress, ...tls }) => {
    const made = new Agent({ connect: { ca: files.pki.ca, servername: SERVER_NAME, ...tls }, ...(localAddress === undefined ? {} : { localAddress }) })
    agents.push(made)
    return made
  }
  const clientAgents = new Map(CLIENTS.map(client => [client.name, client.cert === null ? agent({}) : agent({ cert: files.pki[client.name].chain, key: files.pki[client.name].key })]))

  let deployments = 0
  for (const shape of Object.keys(SHAPES)) {
    for (const [index, format] of proxy.formats.entries()) {
      await t.test(`${SHAPES[shape]}; ${format.label}`, async t => {
        const deployment = await deploy(t, proxy, { shape, format, files, runDir: join(dir, `run-${++deployments}`) })
        await checkClients(t, proxy, deployment, clientAgents)
        await checkSmuggling(t, deployment, files, clientAgents)
        if (shape === 'mtls') await checkBypassMtls(t, deployment, files, clientAgents, agent)
        else await checkBypassAddress(t, deployment, files, agent)
        // Reloads and rotations do not depend on the header format: once per shape.
        if (index === 0) await checkReloadUnderLoad(t, proxy, deployment, clientAgents.get('orderService'))
        if (index === 0 && shape === 'mtls') await checkRotationUnderLoad(t, proxy, deployment, files, clientAgents.get('orderService'))
      })
    }
  }
}

async function deploy (t, proxy, { shape, format, files, runDir }) {
  await mkdir(runDir, { recursive: true })
  const service = await startService({ shape, files, forwarded: format.forwarded })
  let running = null
  t.teardown(async () => {
    await running?.stop()
    await service.app.close()
  })
  let values = null
  // A free port can be taken by someone else before the proxy binds it: try again with new ones.
  for (let attempt = 1; running === null; attempt++) {
    values = await placeholderValues(proxy, { service, files, runDir })
    const config = join(runDir, proxy.configName)
    await renderConfig(proxy.templates[shape], values, config)
    try {
      running = await proxy.start({ config, runDir, values, ready: readiness(proxy, files, values) })
    } catch (err) {
      if (!portTaken(err) || attempt === 3) throw err
    }
  }
  const { header, format: headerFormat } = forwardedSetting(format.forwarded)
  return {
    shape,
    service,
    proxy: running,
    url: `https://127.0.0.1:${values.LISTEN_PORT}`,
    // Caddy routes by Host (and, with client authentication, insists it matches the TLS server name).
    host: `${SERVER_NAME}:${values.LISTEN_PORT}`,
    header,
    headerFormat
  }
}

/** What the suite puts in for each placeholder of the example configs (their READMEs list them). */
async function placeholderValues (proxy, { service, files, runDir }) {
  const values = {
    LISTEN_ADDRESS: '127.0.0.1',
    LISTEN_PORT: await freePort(),
    APP_ADDRESS: '127.0.0.1',
    APP_PORT: service.port,
    APP_SERVER_NAME: SERVER_NAME,
    SERVER_NAME,
    CERT_DIR: files.certDir,
    RUN_DIR: runDir
  }
  for (const name of proxy.extraPorts ?? []) values[name] = await freePort()
  return values
}

/** Ready when the proxy itself shows its certificate on LISTEN_PORT and its other ports accept connections. */
const readiness = (proxy, files, values) => async () =>
  await servesCertificate(values.LISTEN_PORT, { ca: files.pki.ca, servername: SERVER_NAME, fingerprint256: files.edgeFingerprint256 }) &&
  (await Promise.all((proxy.extraPorts ?? []).map(name => accepts(values[name])))).every(Boolean)

let probes = 0
/** One request; resolves with `{ status, body, probe }` or `{ error, probe }` when no answer came. */
async function call (baseUrl, host, dispatcher, route, headers = {}) {
  const probe = `probe-${++probes}`
  try {
    const response = await request(`${baseUrl}${route.url}`, {
      method: route.method,
      dispatcher,
      headers: { host, 'x-probe-id': probe, ...(route.method === 'POST' ? { 'content-type': 'application/json' } : {}), ...headers },
      ...(route.method === 'POST' ? { body: '{}' } : {}),
      headersTimeout: REQUEST_LIMIT_MS,
      bodyTimeout: REQUEST_LIMIT_MS
    })
    const text = await response.body.text()
    let body = text
    try {
      body = JSON.parse(text)
    } catch {}
    return { status: response.statusCode, body, probe }
  } catch (err) {
    return { error: err, probe }
  }
}

const viaProxy = (deployment, dispatcher, route, headers) => call(deployment.url, deployment.host, dispatcher, route, headers)

async function checkClients (t, proxy, deployment, clientAgents) {
  await t.test('each client certificate of the test set: the identity the route sees, 200/401/403', async t => {
    for (const client of CLIENTS) {
      const dispatcher = clientAgents.get(client.name)
      const [whoami, read, charge] = [
        await viaProxy(deployment, dispatcher, ROUTES.whoami),
        await viaProxy(deployment, dispatcher, ROUTES.read),
        await viaProxy(deployment, dispatcher, ROUTES.charge)
      ]
      const refused = client.refused === true || (client.refused === 'crl' && proxy.checksCrl)
      if (refused) {
        for (const answer of [whoami, read, charge]) {
          if (proxy.refusal === 'handshake') t.ok(answer.error, `${client.name}: ${answer.error?.code ?? answer.status} (refused at the proxy's handshake)`)
          else t.equal(answer.status, proxy.refusal.status, `${client.name}: ${answer.status ?? answer.error?.code} from the proxy itself`)
          t.notOk(deployment.service.seen.has(answer.probe), `${client.name}: never reached the service`)
        }
        continue
      }
      if (client.id !== undefined) {
        t.same([whoami.status, whoami.body.id, whoami.body.source], [200, client.id, 'forwarded'], `${client.name}: the route sees ${client.id}`)
        t.same([read.status, charge.status], [client.read, client.charge], `${client.name}: read ${client.read}, charge ${client.charge}`)
      } else {
        t.same([whoami.status, whoami.body.id, whoami.body.error], [200, null, client.error], `${client.name}: no identity (${client.error})`)
        t.same([read.status, charge.status], [401, 401], `${client.name}: 401 on both routes`)
      }
    }
  })
}

async function checkSmuggling (t, deployment, files, clientAgents) {
  const forged = { [deployment.header]: forwardedValue(deployment.headerFormat, files.pki.orderService.certificate) }
  await t.test(`a client without a certificate cannot smuggle ${deployment.header}: the proxy removes it`, async t => {
    const dispatcher = clientAgents.get('no certificate')
    const whoami = await viaProxy(deployment, dispatcher, ROUTES.whoami, forged)
    t.same([whoami.status, whoami.body.id, whoami.body.error, whoami.body.forwardedHeader], [200, null, 'ERR_MTLS_FORWARDED_HEADER_MISSING', null],
      'the service got no header: no identity')
    const charge = await viaProxy(deployment, dispatcher, ROUTES.charge, forged)
    t.equal(charge.status, 401, 'charging with order-service\'s certificate in the header: 401')
  })
  await t.test(`a client cannot put another service's certificate in ${deployment.header}: the proxy overwrites it`, async t => {
    const dispatcher = clientAgents.get('inventoryService')
    const whoami = await viaProxy(deployment, dispatcher, ROUTES.whoami, forged)
    t.equal(whoami.body.id, spiffe('production/inventory-service'), 'the route sees the client\'s own certificate')
    t.not(whoami.body.forwardedHeader, forged[deployment.header], 'the header the service got is not the one the client sent')
    const charge = await viaProxy(deployment, dispatcher, ROUTES.charge, forged)
    t.equal(charge.status, 403, 'inventory-service may not charge, whatever it sends')
  })
}

/** Straight to the service, past the proxy. */
const direct = (deployment, dispatcher, route, headers) => call(`${deployment.shape === 'mtls' ? 'https' : 'http'}://127.0.0.1:${deployment.service.port}`, `${SERVER_NAME}:${deployment.service.port}`, dispatcher, route, headers)

async function checkBypassMtls (t, deployment, files, clientAgents, agent) {
  const forged = { [deployment.header]: forwardedValue(deployment.headerFormat, files.pki.orderService.certificate) }
  await t.test(`bypassing the proxy: a caller that is not the proxy is itself, its forged ${deployment.header} is ignored`, async t => {
    const inventory = clientAgents.get('inventoryService')
    const whoami = await direct(deployment, inventory, ROUTES.whoami, forged)
    t.same([whoami.body.id, whoami.body.source], [spiffe('production/inventory-service'), 'tls'], 'the route sees the caller\'s own certificate')
    t.equal((await direct(deployment, inventory, ROUTES.charge, forged)).status, 403, 'and refuses it the charge')
    const anonymous = await direct(deployment, clientAgents.get('no certificate'), ROUTES.whoami, forged)
    t.ok(anonymous.error, `without a certificate: refused at the service's handshake (${anonymous.error?.code})`)
    t.notOk(deployment.service.seen.has(anonymous.probe), 'the request never reached a route')
  })
  await t.test('the control: the same header from the proxy\'s own certificate is believed (it is valid; only the proxy may send it)', async t => {
    const asProxy = agent({ cert: files.proxy.chain, key: files.proxy.key })
    const whoami = await direct(deployment, asProxy, ROUTES.whoami, forged)
    t.same([whoami.body.id, whoami.body.source], [spiffe('production/order-service'), 'forwarded'])
  })
}

async function checkBypassAddress (t, deployment, files, agent) {
  const forged = { [deployment.header]: forwardedValue(deployment.headerFormat, files.pki.orderService.certificate) }
  await t.test(`bypassing the proxy from another address (127.0.0.2): a forged ${deployment.header} is ignored`, async t => {
    const elsewhere = agent({ localAddress: '127.0.0.2' })
    const whoami = await direct(deployment, elsewhere, ROUTES.whoami, forged)
    if (whoami.error?.code === 'EADDRNOTAVAIL') return t.skip('127.0.0.2 is not a local address here')
    t.same([whoami.body.id, whoami.body.error], [null, 'ERR_MTLS_NOT_TLS'], 'no identity')
    t.equal((await direct(deployment, elsewhere, ROUTES.charge, forged)).status, 401, 'charge: 401')
  })
  await t.test('address trust believes any caller at the proxy\'s address: a forged header from 127.0.0.1 is an identity (why mTLS is the default)', async t => {
    const whoami = await direct(deployment, agent({}), ROUTES.whoami, forged)
    t.same([whoami.body.id, whoami.body.source], [spiffe('production/order-service'), 'forwarded'])
  })
}

// 4 loops; the action once 20 requests were answered; then on until 40 more went through after it.
const LOAD = { loops: 4, beforeAction: 20 }
const AFTER_ACTION = 40

async function checkReloadUnderLoad (t, proxy, deployment, dispatcher) {
  await t.test(`${proxy.reloadHow} under load: no request lost`, async t => {
    const result = await loadDuring({ ...LOAD, url: `${deployment.url}${ROUTES.read.url}`, dispatcher, headers: { host: deployment.host }, action: () => deployment.proxy.reload(), enough: result => result.okAfterAction >= AFTER_ACTION })
    t.equal(result.failed, 0, `${result.ok} requests answered 200, ${result.failed} not`, { samples: result.samples })
    t.ok(result.okAfterAction >= AFTER_ACTION, `${result.okAfterAction} of them sent after the reload (${result.action}, ${result.actionMs} ms)`)
    if (proxy.reloadClosesIdleConnections) {
      t.comment(`${result.retried} GET retried once: sent as the old ${proxy.name} closed an idle keep-alive connection, closed before any answer`)
    } else {
      t.equal(result.retried, 0, 'not even a retry: no connection was closed under a request', { retrySamples: result.retrySamples })
    }
  })
}

async function checkRotationUnderLoad (t, proxy, deployment, files, dispatcher) {
  await t.test('the service\'s certificate rotated (fastify-mtls reload) under load: no request lost, new connections get the new one', async t => {
    const before = deployment.service.app.mtls.status().certificate.fingerprint256
    const servedBy = deployment.service.servedBy
    servedBy.clear()
    let next = null
    const result = await loadDuring({
      ...LOAD,
      url: `${deployment.url}${ROUTES.read.url}`,
      dispatcher,
      headers: { host: deployment.host },
      action: async () => {
        next = await files.rotateApp()
        return await deployment.service.app.mtls.reload()
      },
      enough: () => (servedBy.get(next) ?? 0) >= AFTER_ACTION
    })
    t.equal(result.failed, 0, `${result.ok} requests answered 200, ${result.failed} not`, { samples: result.samples })
    t.equal(result.retried, 0, 'not even a retry: the clients\' connections to the proxy are not touched', { retrySamples: result.retrySamples })
    t.same([result.action.changed, result.action.fingerprint256], [true, next], 'fastify-mtls serves the new certificate')
    t.ok(servedBy.get(before) > 0 && servedBy.get(next) >= AFTER_ACTION,
      `${proxy.name} sent requests over connections shown the old certificate (${servedBy.get(before) ?? 0}) and the new (${servedBy.get(next) ?? 0})`)
  })
}
