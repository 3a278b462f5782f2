// `pnpm demo`: a fresh PKI, payment-service in its own process, and the story of who may call it.
// Exits 0 when every step behaved as expected, 1 naming the step otherwise; always cleans up.
// `pnpm demo --serve` keeps payment-service running and prints curl commands to try.
import { fork } from 'node:child_process'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connect } from 'node:tls'
import { fileURLToPath } from 'node:url'
import { Agent, request } from 'undici'
import { createPaymentsClient } from './order-service.js'
import { makeDemoPki, spiffe } from './pki.js'

const serve = process.argv.includes('--serve')
const dir = await mkdtemp(join(tmpdir(), 'payment-mesh-'))
let service = null
let step = 0

const say = text => console.log(text)
const ok = text => say(`   ok  ${text}`)
class StepFailed extends Error {}
const expect = (condition, text) => {
  if (!condition) throw new StepFailed(text)
  ok(text)
}
const heading = text => say(`\n${++step}. ${text}`)

async function cleanUp () {
  if (service !== null && service.exitCode === null) {
    service.kill('SIGTERM')
    await Promise.race([once(service, 'exit'), new Promise(resolve => setTimeout(resolve, 2000).unref())])
    if (service.exitCode === null) service.kill('SIGKILL')
  }
  await rm(dir, { recursive: true, force: true })
}

/** Fingerprint of the certificate a new TLS connection to the service is shown. */
async function servedFingerprint (port, ca) {
  return await new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, servername: 'localhost', ca }, () => {
      resolve(socket.getPeerX509Certificate().fingerprint256)
      socket.destroy()
    })
    socket.on('error', reject)
  })
}

async function call (url, dispatcher, method, path, body) {
  const response = await request(`${url}${path}`, {
    method,
    dispatcher,
    ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } })
  })
  const text = await response.body.text()
  return { status: response.statusCode, body: text.startsWith('{') ? JSON.parse(text) : text }
}

async function story () {
  heading('A fresh PKI from mtls-pki (nothing is committed)')
  const pki = await makeDemoPki(dir)
  const { payment, order, inventory, stranger } = pki.files
  const caPem = readFileSync(payment.caFile, 'utf8')
  ok(`root and issuing CA, certificates for payment-service, order-service, inventory-service, and a stranger's, in ${dir}`)

  heading('payment-service starts on 127.0.0.1 (fastify-mtls, optional mode; identity; authz; under-pressure)')
  service = fork(fileURLToPath(new URL('./payment-service.js', import.meta.url)), [payment.chainFile, payment.keyFile, payment.caFile, serve ? (process.env.PORT ?? '8443') : '0'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const [started] = await Promise.race([once(service, 'message'), once(service, 'exit').then(([code]) => { throw new StepFailed(`payment-service exited with ${code}`) })])
  const url = `https://localhost:${started.port}`
  ok(`listening at ${url}`)

  if (serve) {
    const curl = (who, method, path, data) => `curl --cert ${join(dir, `${who}-chain.pem`)} --key ${join(dir, `${who}-key.pem`)} --cacert ${payment.caFile} ${method === 'POST' ? `-X POST -H 'content-type: application/json' -d '${JSON.stringify(data)}' ` : ''}${url}${path}`
    const stopped = new Promise(resolve => { process.once('SIGINT', resolve); process.once('SIGTERM', resolve) })
    say('\nTry it:\n')
    say(`  # order-service may charge\n  ${curl('order-service', 'POST', '/api/payments/charge', { orderId: 'o-1', amount: 1200, currency: 'EUR' })}\n`)
    say(`  # inventory-service may read but not charge\n  ${curl('inventory-service', 'GET', '/api/payments/1')}\n  ${curl('inventory-service', 'POST', '/api/payments/charge', { orderId: 'o-2', amount: 1, currency: 'EUR' })}\n`)
    say(`  # no certificate: 401 on the API, 200 on /health\n  curl --cacert ${payment.caFile} ${url}/api/payments/1\n  curl --cacert ${payment.caFile} ${url}/health\n`)
    say('Serving until Ctrl-C.')
    await stopped
    return
  }

  heading('order-service charges through undici-mtls (server must be payment-service)')
  const orders = await createPaymentsClient({ certFile: order.chainFile, keyFile: order.keyFile, caFile: order.caFile, paymentsUrl: url })
  const charged = await orders.charge('o-1001', 4200)
  say(`   POST /api/payments/charge -> ${charged.status} ${JSON.stringify(charged.body)}`)
  expect(charged.status === 200 && charged.body.requestedBy === spiffe('order-service'), `charged, requestedBy ${charged.body.requestedBy}`)
  const invalid = await call(url, orders.dispatcher, 'POST', '/api/payments/charge', { orderId: 'o-1002', amount: -5, currency: 'EUR' })
  expect(invalid.status === 400, `a body that breaks the JSON schema is refused: 400 ${invalid.body.message}`)

  heading('inventory-service has a valid certificate but not the charge role')
  const inventoryAgent = await createPaymentsClient({ certFile: inventory.chainFile, keyFile: inventory.keyFile, caFile: inventory.caFile, paymentsUrl: url })
  const refused = await inventoryAgent.charge('o-2001', 100)
  say(`   POST /api/payments/charge -> ${refused.status} ${JSON.stringify(refused.body)}`)
  expect(refused.status === 403 && refused.body.code === 'FST_MTLS_AUTHZ_FORBIDDEN', `refused with ${refused.body.code}`)
  const read = await call(url, inventoryAgent.dispatcher, 'GET', `/api/payments/${charged.body.id}`)
  expect(read.status === 200 && read.body.orderId === 'o-1001', 'but may read payments (payments:read is granted to spiffe://mycompany.com/production/**)')
  await inventoryAgent.close()

  heading('a client without a certificate')
  const anonymous = new Agent({ connect: { ca: caPem, servername: 'localhost' } })
  const api = await call(url, anonymous, 'GET', `/api/payments/${charged.body.id}`)
  say(`   GET /api/payments/${charged.body.id} -> ${api.status} ${JSON.stringify(api.body)}`)
  expect(api.status === 401 && api.body.code === 'FST_MTLS_AUTHZ_PEER_REQUIRED', `the API answers 401 ${api.body.code}`)
  const health = await call(url, anonymous, 'GET', '/health')
  expect(health.status === 200, `/health answers ${health.status} ${JSON.stringify(health.body)} (a load-balancer probe needs no certificate)`)
  await anonymous.close()

  heading('a client from another CA (the same SPIFFE ID, signed by a stranger)')
  const strangerAgent = new Agent({ connect: { ca: caPem, cert: readFileSync(stranger.chainFile), key: readFileSync(stranger.keyFile), servername: 'localhost' } })
  const foreign = await call(url, strangerAgent, 'POST', '/api/payments/charge', { orderId: 'o-666', amount: 1, currency: 'EUR' })
  say(`   POST /api/payments/charge -> ${foreign.status} ${JSON.stringify(foreign.body)}`)
  expect(foreign.status === 401 && /UNABLE_TO_GET_ISSUER_CERT_LOCALLY/.test(foreign.body.message), 'refused: its certificate does not verify, whatever name it carries')
  await strangerAgent.close()

  heading('payment-service certificate rotated while order-service keeps calling')
  const before = await servedFingerprint(started.port, caPem)
  const results = { ok: 0, failed: [] }
  const control = { calling: true }
  const loop = (async () => {
    for (let i = 0; control.calling && i < 2000; i++) {
      try {
        const result = await orders.charge(`o-${3000 + i}`, 100)
        if (result.status === 200) results.ok++
        else results.failed.push(`status ${result.status}`)
      } catch (err) {
        results.failed.push(err.message)
      }
    }
  })()
  const next = await pki.rotatePayment()
  for (const [file, text] of [[payment.keyFile, next.key], [payment.chainFile, next.chain]]) {
    await writeFile(`${file}.tmp`, text)
    await rename(`${file}.tmp`, file) // as cert-manager and the kubelet do: never a half-written file
  }
  let after = before
  for (let i = 0; i < 200 && after !== next.fingerprint256; i++) {
    await new Promise(resolve => setTimeout(resolve, 25))
    after = await servedFingerprint(started.port, caPem)
  }
  await new Promise(resolve => setTimeout(resolve, 200))
  control.calling = false
  await loop
  say(`   before: ${before}\n   after:  ${after}`)
  expect(after === next.fingerprint256, 'new connections get the new certificate, without a restart')
  expect(results.failed.length === 0 && results.ok > 0, `${results.ok} charges during the rotation, ${results.failed.length} failed`)
  await orders.close()

  heading("payment-service's fastify.mtls.status() and stats()")
  service.send('status')
  const [{ status, stats }] = await once(service, 'message')
  say(`   certificate: ${status.certificate.uris[0]}, ${status.certificate.fingerprint256.slice(0, 23)}…, ${status.certificate.daysToExpiry} days to expiry`)
  say(`   last reload: ${status.lastReload?.ok ? 'ok' : 'none'} at ${status.lastReload?.at ?? '-'}`)
  say(`   handshakes ${stats.handshakes}, resumed ${stats.resumed}, unverified ${stats.unverified}, reloads ${JSON.stringify(stats.reloads)}`)
  expect(status.certificate.fingerprint256 === next.fingerprint256 && stats.reloads.succeeded >= 1, 'status shows the rotated certificate and the reload')
}

let exitCode = 0
try {
  await story()
  if (!serve) say('\nEvery step behaved as expected.')
} catch (err) {
  exitCode = 1
  console.error(`\nstep ${step} failed: ${err instanceof StepFailed ? err.message : err.stack}`)
} finally {
  await cleanUp()
}
process.exit(exitCode)
