// `pnpm demo`: a fresh PKI, payment-service in its own process, and the story of who may call it.
// Exits 0 when every step behaved as expected, 1 naming the step otherwise; always cleans up.
// `pnpm demo -- --serve` keeps payment-service running on 127.0.0.1:$PORT (8443 by default) and prints curl
// commands to try; Ctrl-C (SIGINT) or SIGTERM closes it, removes the certificates and exits 0.
import { fork } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connect } from 'node:tls'
import { fileURLToPath } from 'node:url'
import { Agent, request } from 'undici'
import { createMtlsAgent } from 'undici-mtls'
import { createPaymentsClient } from './order-service.js'
import { makeDemoPki, OCSP_NEXT_UPDATE_MINUTES, spiffe } from './pki.js'
import { describePolicy } from './policy.js'
import { ISSUER, makeSigningKeys, startTokenIssuer } from './token-issuer.js'

const serve = process.argv.includes('--serve')
let dir = null
let responder = null
let service = null
let serviceExited = null
let step = 0

const say = text => console.log(text)
const ok = text => say(`   ok  ${text}`)
class StepFailed extends Error {}
/** Something the user can fix (a port in use, a bad PORT): said in one line, without a stack. */
class CannotServe extends Error {}
const expect = (condition, text) => {
  if (!condition) throw new StepFailed(text)
  ok(text)
}
let stopSignal = null
const heading = text => {
  if (stopSignal !== null) throw new StepFailed(`stopped by ${stopSignal}`) // no new step once a signal came
  say(`\n${++step}. ${text}`)
}

// Ctrl-C sends SIGINT to every process of the terminal's group: this one, payment-service, and pnpm above us, which
// reports a script that dies of a signal as a failure (ELIFECYCLE) and forwards the signal again (SIGINT, then
// SIGTERM). So catch both: with --serve a signal is how the demo ends (exit 0); otherwise it interrupts the story
// (exit 130). Either way payment-service is closed and the certificates removed, within about 2 s.
const stopped = new Promise(resolve => {
  const onSignal = signal => {
    stopSignal ??= signal
    resolve(signal)
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
})

/** The port for --serve: $PORT, 8443 by default, 0 for any free port. */
function servePort () {
  const given = process.env.PORT ?? '8443'
  if (!/^\d{1,5}$/.test(given) || Number(given) > 65535) throw new CannotServe(`PORT must be a port number from 0 to 65535 (0 picks a free one), not ${JSON.stringify(given)}`)
  return Number(given)
}

function cannotListen ({ code, port }) {
  const why = code === 'EADDRINUSE' ? 'is already in use' : 'needs privileges (ports below 1024)'
  return new CannotServe(`port ${port} on 127.0.0.1 ${why}: set PORT to a free port and run again, e.g. PORT=9443 (PORT=0 picks one)`)
}

const delay = ms => new Promise(resolve => setTimeout(resolve, ms).unref())

/** Stops payment-service, lets the story (`running`) end, stops the OCSP responder, then removes the certificates. */
async function cleanUp (running) {
  if (service !== null && service.exitCode === null && service.signalCode === null) {
    service.kill('SIGTERM')
    await Promise.race([serviceExited, delay(2000)])
    if (service.exitCode === null && service.signalCode === null) service.kill('SIGKILL')
  }
  await Promise.race([running.catch(() => {}), delay(2000)])
  await responder?.close().catch(() => {})
  if (dir !== null) await rm(dir, { recursive: true, force: true })
}

/** Fingerprint of the certificate a new TLS connection to the service is shown (as order-service, so a probe is a verified handshake). */
async function servedFingerprint (port, client) {
  return await new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, servername: 'localhost', ...client }, () => {
      resolve(socket.getPeerX509Certificate().fingerprint256)
      socket.end() // a clean close: destroying it here would count as a refused handshake (`other`) in stats()
    })
    socket.on('error', reject)
  })
}

async function call (url, dispatcher, method, path, body, headers = {}) {
  const response = await request(`${url}${path}`, {
    method,
    dispatcher,
    headers: body === undefined ? headers : { ...headers, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) })
  })
  const text = await response.body.text()
  return { status: response.statusCode, headers: response.headers, body: text.startsWith('{') ? JSON.parse(text) : text }
}

/** The claims of a JWT, unverified: only to show what the issuer put in it. */
const claimsOf = token => JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8'))

async function story () {
  const port = serve ? servePort() : 0
  dir = await mkdtemp(join(tmpdir(), 'payment-mesh-'))

  heading('A fresh PKI from mtls-pki (nothing is committed)')
  const pki = await makeDemoPki(dir)
  responder = pki.responder
  const { payment, order, orderReplica, inventory, stranger, issuer } = pki.files
  const caPem = readFileSync(payment.caFile, 'utf8')
  const signingKeys = makeSigningKeys()
  const issuerKeyFile = join(dir, 'token-issuer-public.pem')
  await writeFile(issuerKeyFile, signingKeys.publicKey)
  ok(`root and issuing CA, certificates for payment-service, order-service (two replicas), inventory-service, token-issuer, and a stranger's, in ${dir}`)
  ok(`the issuing CA's OCSP responder (openssl ocsp) at ${responder.url}: the callers' certificates name it`)

  heading("payment-service's policy (fastify-mtls-authz): who holds which role, and what each route needs")
  for (const line of describePolicy()) say(`   ${line}`)

  heading('payment-service starts on 127.0.0.1 (fastify-mtls, optional mode, callers checked at their OCSP responder; identity; authz with that policy; under-pressure)')
  service = fork(fileURLToPath(new URL('./payment-service.js', import.meta.url)), [payment.chainFile, payment.keyFile, payment.caFile, String(port), issuerKeyFile], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  serviceExited = new Promise(resolve => service.once('exit', (code, signal) => resolve(code ?? signal)))
  const [started] = await Promise.race([
    new Promise(resolve => service.once('message', message => resolve([message]))),
    serviceExited.then(code => { throw new StepFailed(`payment-service exited with ${code}`) })
  ])
  if (started.listenError !== undefined) throw cannotListen(started.listenError)
  const url = `https://localhost:${started.port}`
  ok(`listening at ${url}`)

  if (serve) {
    const curl = (who, method, path, data) => `curl --cert ${join(dir, `${who}-chain.pem`)} --key ${join(dir, `${who}-key.pem`)} --cacert ${payment.caFile} ${method === 'POST' ? `-X POST -H 'content-type: application/json' -d '${JSON.stringify(data)}' ` : ''}${url}${path}`
    say('\nTry it:\n')
    say(`  # order-service may charge\n  ${curl('order-service', 'POST', '/api/payments/charge', { orderId: 'o-1', amount: 1200, currency: 'EUR' })}\n`)
    say(`  # inventory-service may read but not charge\n  ${curl('inventory-service', 'GET', '/api/payments/1')}\n  ${curl('inventory-service', 'POST', '/api/payments/charge', { orderId: 'o-2', amount: 1, currency: 'EUR' })}\n`)
    say(`  # no certificate: 401 on the API, 200 on /health\n  curl --cacert ${payment.caFile} ${url}/api/payments/1\n  curl --cacert ${payment.caFile} ${url}/health\n`)
    say('Serving until Ctrl-C.')
    // Ends with Ctrl-C (the race below); payment-service ending by itself is a failure, unless a signal closed it.
    const code = await serviceExited
    if (code !== 0) throw new StepFailed(`payment-service exited with ${code}`)
    return
  }

  heading('order-service charges through undici-mtls (server must be payment-service)')
  const orders = await createPaymentsClient({ certFile: order.chainFile, keyFile: order.keyFile, caFile: order.caFile, paymentsUrl: url })
  const charged = await orders.charge('o-1001', 4200)
  say(`   POST /api/payments/charge -> ${charged.status} ${JSON.stringify(charged.body)}`)
  expect(charged.status === 200 && charged.body.requestedBy === spiffe('order-service'), `charged, requestedBy ${charged.body.requestedBy}`)
  const invalid = await call(url, orders.dispatcher, 'POST', '/api/payments/charge', { orderId: 'o-1002', amount: -5, currency: 'EUR' })
  expect(invalid.status === 400, `a body that breaks the JSON schema is refused: 400 ${invalid.body.message}`)

  const expected = spiffe('ledger-service')
  heading(`an order-service client set to expect another server (undici-mtls server: '${expected}')`)
  const misdirectedStep = step
  const misdirected = await createPaymentsClient({ certFile: order.chainFile, keyFile: order.keyFile, caFile: order.caFile, paymentsUrl: url, server: expected })
  const refusal = await misdirected.charge('o-1003', 999).then(() => null, err => err)
  say(`   POST /api/payments/charge -> ${refusal === null ? 'sent' : `${refusal.code}: ${refusal.message}`}`)
  expect(refusal?.code === 'ERR_MTLS_SERVER_UNAUTHORIZED', `refused with ${refusal?.code}: payment-service's certificate verifies, but it is not the server this client expects`)
  const unsent = await call(url, orders.dispatcher, 'GET', '/api/payments/2')
  expect(unsent.status === 404, `payment-service never saw that charge (GET /api/payments/2 -> ${unsent.status}): undici-mtls refused before sending the request`)
  await misdirected.close()

  heading('inventory-service has a valid certificate but not the charge role')
  const inventoryAgent = await createPaymentsClient({ certFile: inventory.chainFile, keyFile: inventory.keyFile, caFile: inventory.caFile, paymentsUrl: url })
  const refused = await inventoryAgent.charge('o-2001', 100)
  say(`   POST /api/payments/charge -> ${refused.status} ${JSON.stringify(refused.body)}`)
  expect(refused.status === 403 && refused.body.code === 'FST_MTLS_AUTHZ_FORBIDDEN', `refused with ${refused.body.code}`)
  const read = await call(url, inventoryAgent.dispatcher, 'GET', `/api/payments/${charged.body.id}`)
  expect(read.status === 200 && read.body.orderId === 'o-1001', 'but may read payments (payments:read is granted to spiffe://mycompany.com/production/**)')

  heading('certificate-bound tokens (RFC 8705): order-service gets a token bound to its certificate; inventory-service replays it')
  const tokenIssuer = await startTokenIssuer({ certFile: issuer.chainFile, keyFile: issuer.keyFile, caFile: issuer.caFile, keys: signingKeys })
  try {
    const issuerUrl = `https://localhost:${tokenIssuer.server.address().port}`
    const toIssuer = await createMtlsAgent({ certFile: order.chainFile, keyFile: order.keyFile, caFile: order.caFile, server: ISSUER, watch: false })
    const issued = await call(issuerUrl, toIssuer, 'POST', '/token', {}).finally(() => toIssuer.close())
    const token = issued.body.access_token
    const bound = claimsOf(token).cnf?.['x5t#S256']
    const presented = orders.dispatcher.status().certificate.thumbprintS256
    say(`   POST ${issuerUrl}/token -> ${issued.status}, cnf x5t#S256 ${bound}`)
    expect(issued.status === 200 && bound === presented, `token-issuer bound the token to order-service's certificate (undici-mtls agent.status().certificate.thumbprintS256 ${presented})`)
    const receiptPath = `/api/payments/${charged.body.id}/receipt`
    const receipt = await call(url, orders.dispatcher, 'GET', receiptPath, undefined, { authorization: `Bearer ${token}` })
    say(`   GET ${receiptPath} (order-service, its token) -> ${receipt.status} ${JSON.stringify(receipt.body)}`)
    expect(receipt.status === 200 && receipt.body.for === spiffe('order-service'), 'order-service reads the receipt with its own bound token')
    const replayed = await call(url, inventoryAgent.dispatcher, 'GET', receiptPath, undefined, { authorization: `Bearer ${token}` })
    say(`   GET ${receiptPath} (inventory-service, order-service's token) -> ${replayed.status} ${JSON.stringify(replayed.body)}`)
    say(`   www-authenticate: ${replayed.headers['www-authenticate']}`)
    expect(replayed.status === 401 && replayed.body.code === 'FST_MTLS_AUTHZ_TOKEN_MISMATCH' && /^Bearer error="invalid_token"/.test(replayed.headers['www-authenticate']),
      `inventory-service replaying it with its own certificate is refused: 401 invalid_token ${replayed.body.code}, though it holds payments:read`)
  } finally {
    await tokenIssuer.close()
  }
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
  const probe = { ca: caPem, cert: readFileSync(order.chainFile), key: readFileSync(order.keyFile) }
  const before = await servedFingerprint(started.port, probe)
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
    after = await servedFingerprint(started.port, probe)
  }
  await new Promise(resolve => setTimeout(resolve, 200))
  control.calling = false
  await loop
  say(`   before: ${before}\n   after:  ${after}`)
  expect(after === next.fingerprint256, 'new connections get the new certificate, without a restart')
  expect(results.failed.length === 0 && results.ok > 0, `${results.ok} charges during the rotation, ${results.failed.length} failed`)
  await orders.close()

  heading("payment-service's fastify.mtls.status() and stats()")
  const { status, stats } = await serviceStatus()
  const failures = Object.entries(stats.failures).filter(([, count]) => count > 0).map(([reason, count]) => `${reason} ${count}`).join(', ')
  say(`   certificate: ${status.certificate.uris[0]}, ${status.certificate.fingerprint256.slice(0, 23)}…, ${status.certificate.daysToExpiry} days to expiry`)
  say(`   last reload: ${status.lastReload?.ok ? 'ok' : 'none'} at ${status.lastReload?.at ?? '-'}; reloads ${stats.reloads.succeeded} succeeded, ${stats.reloads.failed} failed`)
  say(`   handshakes ${stats.handshakes}: TLS connections that completed the handshake and reached the routes (resumed ${stats.resumed} of them, from a session ticket)`)
  say(`   unverified ${stats.unverified}: of those, connections without a verified client certificate, which optional mode lets in: here those`)
  say('     of the client without a certificate and of the stranger\'s (its CA is not trusted). They reach the routes with no identity:')
  say('     authz answered 401 on the API, /health answered 200. In require mode they would be refused at the handshake instead.')
  say(`   failures: ${failures === '' ? 'none' : failures} (handshakes refused or broken off, by reason${stats.failures.other > 0 ? `; other: here step ${misdirectedStep}'s client, which hung up once it saw payment-service's identity` : ''})`)
  expect(status.certificate.fingerprint256 === next.fingerprint256 && stats.reloads.succeeded >= 1, 'status shows the rotated certificate and the reload')

  heading("one revocation: order-service's second replica leaks its key, and the CA revokes its certificate at the OCSP responder")
  say('   order-service runs two replicas, each with a key and certificate of its own and the same SPIFFE ID: authz cannot tell')
  say('   them apart, revocation can. payment-service asks a caller\'s OCSP responder on the first connection of its certificate')
  say(`   and keeps the answer until its nextUpdate (${OCSP_NEXT_UPDATE_MINUTES} minutes from this responder): a revocation reaches a certificate`)
  say('   it has checked once that answer expires. Replica b has not called yet, so its next connection asks.')
  const leaked = pki.certificates.orderReplica
  pki.ca.revoke(leaked, { reason: 'keyCompromise' })
  await responder.refresh() // openssl ocsp answers from the rewritten index from now on
  say(`   revoked serial ${leaked.serialNumber} (keyCompromise); ${responder.url} now answers revoked for it`)
  const replica = await createPaymentsClient({ certFile: orderReplica.chainFile, keyFile: orderReplica.keyFile, caFile: orderReplica.caFile, paymentsUrl: url })
  const stolen = await replica.charge('o-4001', 50000).finally(() => replica.close())
  say(`   POST /api/payments/charge (replica b, a new connection) -> ${stolen.status} ${JSON.stringify(stolen.body)}`)
  expect(stolen.status === 401 && stolen.body.code === 'FST_MTLS_AUTHZ_PEER_REQUIRED' && /CERT_REVOKED/.test(stolen.body.message),
    'replica b is refused: its responder says revoked, so payment-service gives it no identity (CERT_REVOKED) and authz answers 401')
  // The others on new connections of their own: their certificates' good answers still stand.
  const replicaA = await createPaymentsClient({ certFile: order.chainFile, keyFile: order.keyFile, caFile: order.caFile, paymentsUrl: url })
  const still = await replicaA.charge('o-4002', 300).finally(() => replicaA.close())
  say(`   POST /api/payments/charge (replica a, a new connection) -> ${still.status} ${JSON.stringify(still.body)}`)
  expect(still.status === 200 && still.body.requestedBy === spiffe('order-service'), 'replica a, the same SPIFFE ID with an unrevoked certificate, still charges')
  const reader = await createPaymentsClient({ certFile: inventory.chainFile, keyFile: inventory.keyFile, caFile: inventory.caFile, paymentsUrl: url })
  const readAgain = await call(url, reader.dispatcher, 'GET', `/api/payments/${still.body.id}`).finally(() => reader.close())
  expect(readAgain.status === 200, `inventory-service still reads payments on a new connection (GET /api/payments/${still.body.id} -> ${readAgain.status})`)
  const since = await serviceStatus()
  const lookups = since.status.revocation.ocsp
  say(`   status().revocation.ocsp: ${lookups.cached} certificates' answers cached, ${lookups.pending} lookups under way, ${lookups.responders} responder asked, last error ${lookups.lastError === null ? 'none' : lookups.lastError.message}`)
  say('   An open connection keeps the verdict of its handshake: OCSP judges new connections only (a CRL reload closes open ones).')
  expect(since.stats.failures.revoked === 1 && lookups.lastError === null, `payment-service counted the refusal: stats().failures.revoked ${since.stats.failures.revoked}`)
}

/** payment-service's `fastify.mtls.status()` and `stats()`, over IPC. */
async function serviceStatus () {
  service.send('status')
  const [answer] = await new Promise(resolve => service.once('message', message => resolve([message])))
  return answer
}

let exitCode = 0
const running = story()
running.catch(() => {}) // reported below, unless a signal ended the story first
try {
  const signal = await Promise.race([running.then(() => null), stopped])
  await cleanUp(running)
  if (signal !== null) {
    exitCode = serve ? 0 : 128 + (signal === 'SIGINT' ? 2 : 15)
    say(serve ? `\nStopped (${signal}): payment-service closed, certificates removed.` : `\nInterrupted (${signal}) at step ${step}; payment-service closed, certificates removed.`)
  } else if (serve) {
    say('\npayment-service closed; certificates removed.')
  } else {
    say('\nEvery step behaved as expected.')
  }
} catch (err) {
  await cleanUp(running)
  exitCode = 1
  console.error(err instanceof CannotServe ? `\n${err.message}` : `\nstep ${step} failed: ${err instanceof StepFailed ? err.message : err.stack}`)
}
process.exit(exitCode)
