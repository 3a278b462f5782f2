import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import t from 'tap'

const demo = fileURLToPath(new URL('../src/demo.js', import.meta.url))

function run (args, env = {}, untilLine = null) {
  return new Promise(resolve => {
    const child = spawn(process.execPath, [demo, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    const timer = setTimeout(() => child.kill('SIGKILL'), 90_000)
    const onData = chunk => {
      output += chunk
      if (untilLine !== null && output.includes(untilLine)) child.kill('SIGTERM')
    }
    child.stdout.on('data', onData)
    child.stderr.on('data', onData)
    child.on('exit', code => { clearTimeout(timer); resolve({ code, output }) })
  })
}

t.test('pnpm demo tells the whole story and exits 0', async t => {
  const { code, output } = await run([])
  t.equal(code, 0, output.split('\n').slice(-5).join('\n'))
  t.match(output, /POST \/api\/payments\/charge -> 200 .*"requestedBy":"spiffe:\/\/mycompany.com\/production\/order-service"/)
  t.match(output, /-> 403 .*"code":"FST_MTLS_AUTHZ_FORBIDDEN"/)
  t.match(output, /GET \/api\/payments\/1 -> 401 .*"code":"FST_MTLS_AUTHZ_PEER_REQUIRED"/)
  t.match(output, /\/health answers 200/)
  t.match(output, /UNABLE_TO_GET_ISSUER_CERT_LOCALLY/)
  t.match(output, /ok {2}\d+ charges during the rotation, 0 failed/)
  t.match(output, /status shows the rotated certificate and the reload/)
  t.match(output, 'Every step behaved as expected.')
  t.notMatch(output, /step \d+ failed/)
})

t.test('pnpm demo --serve prints ready-to-paste curl commands and stops cleanly', async t => {
  const { code, output } = await run(['--serve'], { PORT: '0' }, 'Serving until Ctrl-C.')
  t.equal(code, 0)
  t.match(output, /curl --cert \S+order-service-chain\.pem --key \S+order-service-key\.pem --cacert \S+payment-service-ca\.pem -X POST/)
  t.match(output, /curl --cacert \S+ https:\/\/localhost:\d+\/health/)
})
