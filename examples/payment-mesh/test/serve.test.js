import { existsSync } from 'node:fs'
import { createServer } from 'node:net'
import { once } from 'node:events'
import t from 'tap'
import { certificateDir, listening, startDemo } from './demo-process.js'
import { hangLimit } from './hang-limit.js'

// The file's hang limit (a demo process per test, one after another): tap's own 30 s is no limit scaled for a busy machine.
t.setTimeout(hangLimit(180_000))

const READY = 'Serving until Ctrl-C.'
const noStack = /^\s+at /m

t.test('pnpm demo -- --serve prints ready-to-paste curl commands and stops cleanly on SIGTERM', async t => {
  const run = startDemo(['--serve'], { env: { PORT: '0' } })
  t.teardown(run.kill)
  await run.waitFor(READY)
  run.child.kill('SIGTERM')
  const { code, output } = await run.exited
  t.equal(code, 0, 'exit code 0', { output })
  t.match(output, /curl --cert \S+order-service-chain\.pem --key \S+order-service-key\.pem --cacert \S+payment-service-ca\.pem -X POST/)
  t.match(output, /curl --cacert \S+ https:\/\/localhost:\d+\/health/)
  t.match(output, /Stopped \(SIGTERM\): payment-service closed, certificates removed\./)
})

t.test('Ctrl-C during --serve closes payment-service, removes the certificates and exits 0', async t => {
  const run = startDemo(['--serve'], { env: { PORT: '0' } })
  t.teardown(run.kill)
  const ready = await run.waitFor(READY)
  const port = Number(ready.match(/listening at https:\/\/localhost:(\d+)/)?.[1])
  t.ok(await listening(port), 'payment-service was listening')
  run.interrupt() // SIGINT to the demo and payment-service alike, as a terminal does
  const { code, signal, output } = await run.exited
  t.equal(code, 0, 'exit code 0', { output })
  t.equal(signal, null, 'not killed by the signal')
  t.match(output, /Stopped \(SIGINT\): payment-service closed, certificates removed\./)
  t.notMatch(output, noStack)
  t.notMatch(output, /failed/)
  t.notOk(await listening(port), 'nothing listens on the port any more')
  const responderPort = Number(output.match(/OCSP responder \(openssl ocsp\) at http:\/\/127\.0\.0\.1:(\d+)\//)?.[1])
  t.ok(responderPort > 0 && !(await listening(responderPort)), 'the OCSP responder the callers\' certificates name is stopped too')
  t.notOk(existsSync(certificateDir(output)), 'the certificates are removed')
})

// pnpm runs a script through `sh -c`; on Ctrl-C it signals that shell again, and dash (Debian's sh) dies of the
// second SIGINT even when the demo exits 0: hence `exec node src/demo.js`. Run through the pnpm running these tests.
const pnpm = /pnpm/.test(process.env.npm_execpath ?? '') ? process.env.npm_execpath : null
t.test('Ctrl-C during `pnpm demo -- --serve`: exit 0, no pnpm error lines', { skip: pnpm === null && 'not run by pnpm (npm_execpath)' }, async t => {
  const run = startDemo(['--serve'], { env: { PORT: '0' }, commandArgs: [pnpm, 'run', 'demo'] })
  t.teardown(run.kill)
  await run.waitFor(READY)
  run.interrupt()
  const { code, output } = await run.exited
  t.equal(code, 0, 'exit code 0', { output })
  t.notMatch(output, /ELIFECYCLE|ERR_PNPM|Command failed/)
  t.match(output, /Stopped \(SIGINT\)/)
})

t.test('--serve on a port in use: one line says to set PORT, exit 1, no stack', async t => {
  const busy = createServer()
  busy.listen(0, '127.0.0.1')
  await once(busy, 'listening')
  t.teardown(() => busy.close())
  const { port } = busy.address()
  const run = startDemo(['--serve'], { env: { PORT: String(port) } })
  t.teardown(run.kill)
  const { code, output } = await run.exited
  t.equal(code, 1, 'exit code 1', { output })
  const said = output.split('\n').filter(line => line.includes(String(port)))
  t.same(said, [`port ${port} on 127.0.0.1 is already in use: set PORT to a free port and run again, e.g. PORT=9443 (PORT=0 picks one)`])
  t.notMatch(output, noStack)
  t.notMatch(output, /step \d+ failed/)
  t.notOk(existsSync(certificateDir(output)), 'the certificates are removed')
})

t.test('--serve with a PORT that is not a port number: one line, exit 1', async t => {
  const run = startDemo(['--serve'], { env: { PORT: '8443x' } })
  t.teardown(run.kill)
  const { code, output } = await run.exited
  t.equal(code, 1, 'exit code 1', { output })
  t.equal(output.trim(), 'PORT must be a port number from 0 to 65535 (0 picks a free one), not "8443x"')
})
