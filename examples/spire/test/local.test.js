// The by-hand run (README, "Run it without docker"): `start:local` runs `node src/local.js`, which starts the test
// Workload API server and both services, reaches a successful mTLS call between them, and leaves nothing behind:
// after `--once`, and after Ctrl-C.
import { existsSync, readFileSync } from 'node:fs'
import { dirname } from 'node:path'
import t from 'tap'
import { ORDER_SERVICE_ID, PAYMENT_SERVICE_ID } from '../src/identities.js'
import { alive, start, until } from './processes.js'

const SUCCESS = /local: mTLS call succeeded: (\S+) charged (\S+), both on SVIDs from the Workload API/
const JWT_SUCCESS = /local: JWT-SVID call succeeded: (\S+) charged (\S+) with no client certificate, on a JWT-SVID from the Workload API/

/** The pids of the services and the socket's directory, as local.js reports them. */
function started (lines) {
  const pids = lines.flatMap(line => /local: started \S+ \(pid (\d+)\)/.exec(line)?.slice(1) ?? []).map(Number)
  const socket = lines.map(line => /local: test Workload API on unix:\/\/(\S+),/.exec(line)?.[1]).find(path => path !== undefined)
  return { pids, socketDir: socket === undefined ? undefined : dirname(socket) }
}

/** The services are gone and the socket's temporary directory removed (polled: they go as local.js exits). */
async function leftNothing (t, run) {
  const { pids, socketDir } = started(run.lines)
  t.equal(pids.length, 2, 'both services were started')
  for (const pid of pids) t.teardown(() => { if (alive(pid)) process.kill(pid, 'SIGKILL') })
  await until(() => pids.every(pid => !alive(pid)), 'the services to be gone')
  t.pass('both services are gone')
  t.ok(socketDir !== undefined && !existsSync(socketDir), `the Workload API's temporary directory is removed (${socketDir})`)
}

t.test('the documented command runs src/local.js', async t => {
  const { scripts } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'))
  // exec: Ctrl-C then reaches node itself, not a shell that pnpm would report as killed by SIGINT
  t.equal(scripts['start:local'], 'exec node src/local.js')
  t.match(readFileSync(new URL('../README.md', import.meta.url), 'utf8'), 'pnpm@10.34.9 --filter spire-example start:local')
})

t.test('--once: a successful mTLS call and a successful JWT-SVID call between the two services, then everything stops and exits 0', async t => {
  const run = start(t, 'local.js', { args: ['--once'], env: { PORT: undefined, JWT_PORT: undefined, CHARGE_INTERVAL_MS: undefined } })
  const [[, client, server], [, jwtClient, jwtServer]] = await Promise.all([
    run.waitFor(SUCCESS, 'a successful call'),
    run.waitFor(JWT_SUCCESS, 'a successful call over the JWT-SVID hop')
  ])
  t.equal(client, ORDER_SERVICE_ID, 'order-service called')
  t.equal(server, PAYMENT_SERVICE_ID, 'payment-service answered')
  t.equal(jwtClient, ORDER_SERVICE_ID, 'order-service called over the JWT-SVID hop')
  t.equal(jwtServer, PAYMENT_SERVICE_ID, 'payment-service answered there')
  t.ok(run.lines.some(line => line.includes(`order-1: 200 from ${PAYMENT_SERVICE_ID} (payment 1, payment-service saw us as ${ORDER_SERVICE_ID})`)),
    'order-service verified payment-service, and payment-service saw order-service')
  t.ok(run.lines.some(line => line.includes(`order-1-jwt over the JWT-SVID hop: 200 from ${PAYMENT_SERVICE_ID} (payment 2, payment-service saw us as ${ORDER_SERVICE_ID} from a jwt-svid)`)),
    'over the JWT-SVID hop, payment-service saw order-service by its JWT-SVID')
  const { code } = await run.exit('local.js to exit after --once')
  t.equal(code, 0, 'exit 0')
  t.same(run.stderr, [], 'nothing on stderr')
  await leftNothing(t, run)
})

t.test('until Ctrl-C: calls go on through pushed SVID rotations; SIGINT to the group stops everything, exit 0', async t => {
  const run = start(t, 'local.js', { env: { PORT: undefined, JWT_PORT: undefined, CHARGE_INTERVAL_MS: '100', ROTATE_INTERVAL_MS: '300' } })
  await Promise.all([run.waitFor(SUCCESS, 'a successful call'), run.waitFor(JWT_SUCCESS, 'a successful call over the JWT-SVID hop')])
  await Promise.all([
    run.waitFor(/payment-service: SVID rotated/, 'payment-service to rotate'),
    run.waitFor(/order-service: SVID rotated/, 'order-service to rotate')
  ])
  await Promise.all([
    run.waitFor(/order-service: order-\d+: 200 from /, 'a call after a rotation'),
    run.waitFor(/order-service: order-\d+-jwt over the JWT-SVID hop: 200 from /, 'a call over the JWT-SVID hop after a rotation')
  ])
  // A call under way when Ctrl-C reaches both services may fail as payment-service closes: only those before count.
  const failed = run.lines.filter(line => / failed: /.test(line))
  t.same(failed, [], 'no call failed')
  run.interrupt()
  const { code } = await run.exit('local.js to exit on Ctrl-C')
  t.equal(code, 0, 'exit 0')
  t.same(run.stderr, [], 'nothing on stderr')
  await leftNothing(t, run)
})
