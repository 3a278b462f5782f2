// The cluster example for real: a primary with two workers on one port (forked by this test, talking over IPC), a
// node:tls client resuming sessions across workers, a rotation every worker applies, a broken rotation every worker
// survives (and says so), a worker that dies replaced without losing resumption.
import { fork } from 'node:child_process'
import { once } from 'node:events'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import tls from 'node:tls'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { writeCertificateFiles } from 'mtls-pki'
import { until } from 'mtls-test-support'
import { makeFiles } from '../src/files.js'

const WORKERS = 2
const { dir, pki } = await makeFiles()
const client = { ca: pki.ca, cert: await readFile(join(dir, 'client-chain.pem'), 'utf8'), key: await readFile(join(dir, 'client-key.pem'), 'utf8') }

const primary = fork(fileURLToPath(new URL('../src/cluster.js', import.meta.url)), [dir], { env: { ...process.env, WORKERS: String(WORKERS), LOG_LEVEL: 'silent' }, stdio: ['ignore', 'ignore', 'pipe', 'ipc'] })
let stderr = ''
primary.stderr.on('data', chunk => { stderr += chunk })
t.teardown(() => { primary.kill() })
const [{ port }] = await Promise.race([
  once(primary, 'message'),
  once(primary, 'exit').then(([code]) => { throw new Error(`the primary exited (${code}): ${stderr}`) })
])

let asked = 0
/** Every worker's status, as the primary collects it. */
async function status () {
  const id = ++asked
  primary.send({ type: 'status', id })
  for (;;) {
    const [message] = await once(primary, 'message')
    if (message.type === 'status' && message.id === id) return message
  }
}

/** One new connection (resuming `session` when given), one GET /whoami; its answer, whether it resumed, and the session it leaves. */
async function connect (session) {
  const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ...client, ...(session === undefined ? {} : { session }) })
  let next = null
  let body = ''
  let resumed = false
  socket.on('session', ticket => { next = ticket })
  socket.on('secureConnect', () => {
    resumed = socket.isSessionReused()
    socket.write('GET /whoami HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n')
  })
  socket.on('data', chunk => { body += chunk })
  // 'close' comes whatever happens (a worker that dies mid-connection resets it): then there is no answer.
  socket.on('error', () => {})
  await once(socket, 'close')
  const start = body.indexOf('\r\n\r\n')
  if (start === -1) return { worker: null, resumedByClient: false, session }
  return { ...JSON.parse(body.slice(start + 4)), resumedByClient: resumed, session: next ?? session }
}

t.test('a session one worker made resumes on the others: at least 95% of repeat connections', async t => {
  const first = await connect()
  t.equal(first.subject, 'order-service', 'the client is verified')
  const seen = new Set([first.worker])
  let session = first.session
  let issuer = first.worker
  let repeats = 0
  let resumed = 0
  let acrossWorkers = 0
  let resumedAcross = 0
  let disagreements = 0
  for (let i = 0; i < 40; i++) {
    const answer = await connect(session)
    repeats++
    seen.add(answer.worker)
    if (answer.resumedByClient) resumed++
    if (answer.worker !== issuer) {
      acrossWorkers++
      if (answer.resumedByClient) resumedAcross++
    }
    if (answer.resumed !== answer.resumedByClient) disagreements++
    session = answer.session
    issuer = answer.worker
  }
  t.equal(disagreements, 0, 'the server\'s record of resumption agrees with the client on every connection')
  t.equal(seen.size, WORKERS, 'connections reached every worker')
  t.ok(acrossWorkers > 0, `${acrossWorkers} repeat connections landed on another worker than the one whose ticket they carried`)
  t.ok(resumed >= 0.95 * repeats, `${resumed} of ${repeats} repeat connections resumed`)
  t.ok(resumedAcross >= 0.95 * acrossWorkers, `${resumedAcross} of ${acrossWorkers} resumed on another worker`)
})

t.test('a rotation is applied by every worker, and each one\'s status says so', async t => {
  const before = await status()
  t.equal(before.workers.length, WORKERS)
  t.ok(before.consistent)
  const next = await pki.intermediate.issue({ dnsNames: ['localhost'], ips: ['127.0.0.1'], usage: 'server' })
  await writeCertificateFiles(dir, 'server', next)
  const wanted = next.fingerprint256
  await until(async () => (await status()).workers.every(worker => worker.fingerprint256 === wanted), 'every worker serving the new certificate')
  const after = await status()
  t.ok(after.consistent, 'every worker serves the same certificate')
  for (const worker of after.workers) t.match(worker.lastReload, { ok: true }, `worker ${worker.worker}: reloaded`)
  const served = await connect()
  t.equal(served.subject, 'order-service', 'and serves')
})

t.test('a broken rotation: every worker keeps serving its previous material, and says its reload failed', async t => {
  const inForce = (await status()).workers[0].fingerprint256
  const other = await pki.intermediate.issue({ dnsNames: ['localhost'], usage: 'server' })
  // A certificate without its key: the files no longer match.
  const { writeFile } = await import('node:fs/promises')
  await writeFile(join(dir, 'server-chain.pem'), other.chain)
  await until(async () => (await status()).workers.every(worker => worker.lastReload?.ok === false), 'every worker refusing the mismatched files')
  const failed = await status()
  for (const worker of failed.workers) {
    t.equal(worker.fingerprint256, inForce, `worker ${worker.worker}: still serves the certificate in force`)
    t.match(worker.lastReload, { ok: false, error: { code: String } }, `worker ${worker.worker}: its failed reload is visible`)
    t.ok(worker.stats.reloads.failed >= 1, `worker ${worker.worker}: counts the failed reload`)
  }
  t.equal((await connect()).subject, 'order-service', 'clients are still served')
  // Put the matching pair back: every worker recovers.
  const fixed = await pki.intermediate.issue({ dnsNames: ['localhost'], ips: ['127.0.0.1'], usage: 'server' })
  await writeCertificateFiles(dir, 'server', fixed)
  await until(async () => (await status()).workers.every(worker => worker.fingerprint256 === fixed.fingerprint256 && worker.lastReload?.ok === true), 'every worker on the fixed files')
  t.pass('every worker recovered')
})

t.test('a worker that dies is replaced; the new one resumes the sessions the others made', async t => {
  const { session, worker } = await connect()
  primary.send({ type: 'kill-worker', worker })
  await until(async () => {
    const { workers } = await status()
    return workers.length === WORKERS && workers.every(w => w.worker !== worker)
  }, 'the dead worker replaced')
  let resumedOnNew = false
  const { workers } = await status()
  const fresh = Math.max(...workers.map(w => w.worker))
  let current = session
  for (let i = 0; i < 20 && !resumedOnNew; i++) {
    const answer = await connect(current)
    if (answer.worker === fresh) resumedOnNew = answer.resumedByClient
    current = answer.session
  }
  t.ok(resumedOnNew, 'a session resumed on the replacement worker')
})
