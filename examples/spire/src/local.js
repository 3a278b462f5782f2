// The two services by hand, with no docker and no SPIRE: spiffe-workload-api's test Workload API server stands in
// for the SPIRE agent, on a Unix socket in a temporary directory, with SVIDs from a CA that mtls-pki makes now (a
// SPIFFE ID and no DNS name, 5 minutes, as register.sh's entries). Both services run as the compose file runs
// them, as processes with SPIFFE_ENDPOINT_SOCKET set, and their lines are passed through. New SVIDs are pushed
// every ROTATE_INTERVAL_MS (30 s; 0 for never), as the agent renews them. It issues JWT-SVIDs too (signed with a
// P-256 key made now, 5 minutes, for whatever audience is asked) and serves that key as the JWT bundle, for
// payment-service's JWT-SVID hop. Ctrl-C (SIGINT) or SIGTERM stops the services, then the server, and exits 0;
// `--once` stops after the first successful charge over mTLS and the first over the JWT-SVID hop.
//
//   npx --yes pnpm@10.34.9 --filter spire-example start:local [-- --once]     (or: node src/local.js [--once])
import { spawn } from 'node:child_process'
import { generateKeyPairSync } from 'node:crypto'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { CertificateAuthority } from 'mtls-pki'
import { TestWorkloadApi, jwksOf, svidMessage } from 'spiffe-workload-api/testing'
import { ORDER_SERVICE_ID, PAYMENT_SERVICE_ID, TRUST_DOMAIN } from './identities.js'
import { log, logError } from './svid-log.js'

const once = process.argv.includes('--once')
const rotateMs = Number(process.env.ROTATE_INTERVAL_MS ?? 30_000)
const SVID_TTL_MS = 5 * 60_000
const JWT_SVID_TTL_SECONDS = 300

let api = null
let rotation = null
let stopping = null
const services = []

// Ctrl-C reaches every process of the terminal's group: the services close themselves, and pnpm above us sends
// SIGINT then SIGTERM again. stop() runs once and waits for the services whichever signal they got.
process.on('SIGINT', () => stop(0, 'SIGINT'))
process.on('SIGTERM', () => stop(0, 'SIGTERM'))

/** Stops the services (SIGTERM, SIGKILL after 5 s), then the server; exits `code`, or 1 if a service failed to stop. */
function stop (code, why) {
  stopping ??= (async () => {
    log(`local: ${why}, stopping`)
    clearInterval(rotation)
    const codes = await Promise.all(services.map(async service => {
      if (service.child.exitCode === null && service.child.signalCode === null) {
        service.child.kill('SIGTERM')
        const late = setTimeout(() => service.child.kill('SIGKILL'), 5000)
        await service.exited.finally(() => clearTimeout(late))
      }
      return service.exited
    }))
    await api?.close()
    const failed = codes.some(exitCode => exitCode !== 0)
    log(`local: stopped${failed ? ` (exit codes ${codes.join(', ')})` : ''}`)
    process.exit(failed ? 1 : code)
  })()
  return stopping
}

/** Runs `src/<name>.js`; passes its lines through; `onLine` sees each. A service that ends on its own ends the run. */
function startService (name, env, onLine) {
  const child = spawn(process.execPath, [fileURLToPath(new URL(`./${name}.js`, import.meta.url))], {
    env: { ...process.env, SPIFFE_ENDPOINT_SOCKET: api.endpoint, ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  const exited = new Promise(resolve => child.once('exit', (exitCode, signal) => resolve(exitCode ?? signal)))
  createInterface({ input: child.stdout }).on('line', line => { console.log(line); onLine(line) })
  createInterface({ input: child.stderr }).on('line', line => console.error(line))
  exited.then(result => { if (stopping === null) stop(1, `${name} exited (${result})`) })
  services.push({ child, exited })
  log(`local: started ${name} (pid ${child.pid})`)
  return exited
}

/** An X509SVIDResponse with both SVIDs: this server answers every caller alike, and each service picks its own. */
async function svids (ca) {
  const notAfter = new Date(Date.now() + SVID_TTL_MS)
  const issue = spiffeId => ca.issue({ spiffeId, usage: 'both', notAfter }).then(issued => svidMessage(spiffeId, issued))
  return { svids: await Promise.all([issue(PAYMENT_SERVICE_ID), issue(ORDER_SERVICE_ID)]) }
}

try {
  const ca = await CertificateAuthority.createRoot({ commonName: `${TRUST_DOMAIN} local SVID CA` })
  api = await TestWorkloadApi.start()
  api.setX509(await svids(ca))
  // The trust domain's JWT signing key, as a SPIRE server's: tokens signed with it, its public half the JWT bundle.
  const jwtKey = { key: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey, kid: 'local-jwt-1' }
  api.setJwtSvids([PAYMENT_SERVICE_ID, ORDER_SERVICE_ID].map(spiffeId => ({ spiffeId, ...jwtKey, lifetimeSeconds: JWT_SVID_TTL_SECONDS })))
  api.setJwtBundles({ [TRUST_DOMAIN]: jwksOf([jwtKey]) })
  log(`local: test Workload API on ${api.endpoint}, serving SVIDs and JWT-SVIDs for ${PAYMENT_SERVICE_ID} and ${ORDER_SERVICE_ID}`)
  if (!once && rotateMs > 0) {
    rotation = setInterval(() => {
      svids(ca).then(response => {
        log('local: pushing new SVIDs, as the agent renews them')
        api.setX509(response)
      }, err => logError(`local: cannot issue new SVIDs: ${err.message}`))
    }, rotateMs)
  }

  let paymentsUrl
  const listening = new Promise(resolve => {
    startService('payment-service', { HOST: '127.0.0.1', PORT: process.env.PORT ?? '0', JWT_PORT: process.env.JWT_PORT ?? '0' }, line => {
      const match = /payment-service: listening on (https:\/\/\S+) as /.exec(line)
      if (match !== null) paymentsUrl = match[1]
      const jwtMatch = /payment-service: JWT-SVID hop listening on (https:\/\/\S+) /.exec(line)
      if (jwtMatch !== null) resolve(jwtMatch[1])
    })
  })
  const paymentsJwtUrl = await listening

  // Each way of calling is reported once, on its first success; --once stops when both have succeeded.
  const succeeded = new Set()
  const succeed = (way, message) => {
    if (succeeded.has(way)) return
    succeeded.add(way)
    log(message)
    if (succeeded.size < 2) return
    if (once) stop(0, '--once')
    else log('local: running until Ctrl-C')
  }
  startService('order-service', { PAYMENTS_URL: paymentsUrl, PAYMENTS_JWT_URL: paymentsJwtUrl }, line => {
    if (/order-service: order-\d+: 200 from /.test(line)) {
      succeed('mtls', `local: mTLS call succeeded: ${ORDER_SERVICE_ID} charged ${PAYMENT_SERVICE_ID}, both on SVIDs from the Workload API`)
    } else if (/order-service: order-\d+-jwt over the JWT-SVID hop: 200 from .* from a jwt-svid\)$/.test(line)) {
      succeed('jwt', `local: JWT-SVID call succeeded: ${ORDER_SERVICE_ID} charged ${PAYMENT_SERVICE_ID} with no client certificate, on a JWT-SVID from the Workload API`)
    }
  })
} catch (err) {
  logError(`local: cannot start: ${err.code ?? err.name}: ${err.message}`)
  stop(1, 'failed')
}
