// node:cluster hands each worker, when it listens, the session ticket keys the first worker had when it listened
// (tls.Server's _setServerData). Found by the cluster example: a worker forked after a change of trust served with
// the keys of the old trust, so it resumed sessions made under a trust no longer in force and none of its siblings'.
// fastify-mtls sets the keys of its own trust and identity again once the server listens.
import { fork } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import tls from 'node:tls'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { createRootCa, createTestPki, writeCertificateFiles } from 'mtls-pki'
import { tempDir, until } from 'mtls-test-support'

const pki = await createTestPki()
const dir = await tempDir(t)
await writeCertificateFiles(dir, 'server', pki.server)
await writeFile(join(dir, 'ca.pem'), pki.ca)
await writeFile(join(dir, 'ticket-keys'), randomBytes(48), { mode: 0o600 })
const client = { ca: pki.ca, cert: pki.orderService.chain, key: pki.orderService.key }

const primary = fork(fileURLToPath(new URL('../fixtures/cluster-server.ts', import.meta.url)), [dir], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] })
t.teardown(() => { primary.disconnect() })
const listening = new Map<number, number>()
primary.on('message', (message: { listening: number, port: number }) => { listening.set(message.listening, message.port) })
await until(() => listening.has(1), 'the first worker listening')
const port = listening.get(1) as number

/** A connection (resuming `session` when given): the worker that answered, whether it resumed, and the session it leaves. */
async function connect (session?: Buffer): Promise<{ worker: number | null, resumed: boolean, session: Buffer | undefined }> {
  const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ...client, ...(session === undefined ? {} : { session }) })
  let next: Buffer | undefined
  let resumed = false
  let body = ''
  socket.on('session', (ticket: Buffer) => { next = ticket })
  socket.on('secureConnect', () => {
    resumed = socket.isSessionReused()
    socket.write('GET /worker HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n')
  })
  socket.on('data', (chunk: Buffer) => { body += String(chunk) })
  socket.on('error', () => {})
  await once(socket, 'close')
  const start = body.indexOf('\r\n\r\n')
  return { worker: start === -1 ? null : (JSON.parse(body.slice(start + 4)) as { worker: number }).worker, resumed, session: next ?? session }
}

t.test('a worker forked after a change of trust resumes no session of the old trust, and its siblings\' sessions of the new one', async t => {
  const underOldTrust = (await connect()).session
  // A change of trust: a second CA joins the bundle. The first worker reloads; its keys change with the trust.
  const other = await createRootCa({ commonName: 'joined CA' })
  await writeFile(join(dir, 'ca.pem'), pki.ca + other.certificate)
  await until(async () => !(await connect(underOldTrust)).resumed, 'the first worker on the new trust (old sessions no longer resume)')
  const underNewTrust = (await connect()).session
  primary.send('fork')
  await until(() => listening.has(2), 'the second worker listening')
  // Round robin alternates the workers: the order flips each round so each worker gets sessions of both trusts.
  const answers: Array<{ worker: number | null, resumed: boolean, kind: 'old' | 'current' }> = []
  for (let i = 0; i < 12; i++) {
    const order: Array<'old' | 'current'> = i % 2 === 0 ? ['old', 'current'] : ['current', 'old']
    for (const kind of order) {
      const answer = await connect(kind === 'old' ? underOldTrust : underNewTrust)
      answers.push({ worker: answer.worker, resumed: answer.resumed, kind })
    }
  }
  const served = (worker: number, kind: 'old' | 'current'): typeof answers => answers.filter(answer => answer.worker === worker && answer.kind === kind)
  for (const worker of [1, 2]) {
    t.ok(served(worker, 'old').length > 0 && served(worker, 'current').length > 0, `worker ${worker} answered sessions of both trusts`)
    t.ok(served(worker, 'old').every(answer => !answer.resumed), `worker ${worker}: no session made under the old trust resumes`)
    t.ok(served(worker, 'current').every(answer => answer.resumed), `worker ${worker}: every session made under the trust in force resumes`)
  }
})
