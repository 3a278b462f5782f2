// A server() function whose thrown value cannot be described crashed the process: the connector's catch reads
// `.message` of whatever check() threw, and check() rethrows when reading the thrown object's message throws.
// The attack runs in a child process (bounded by a timeout), so that the crash cannot take the test runner with it.
import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import t from 'tap'

const src = (path: string): string => fileURLToPath(new URL(path, import.meta.url))

const attack = `
import { createTestPki } from 'mtls-pki'
import { request } from 'undici'
import https from 'node:https'
import { createMtlsAgent } from ${JSON.stringify(src('../../src/index.ts'))}
const pki = await createTestPki()
const server = https.createServer({ cert: pki.server.chain, key: pki.server.key, ca: pki.ca, requestCert: true }, (_q, s) => s.end('reached'))
await new Promise(resolve => server.listen(0, '127.0.0.1', resolve))
const agent = await createMtlsAgent({ cert: pki.orderService.chain, key: pki.orderService.key, ca: pki.ca,
  server: {
    error: () => { throw new Error('policy store unreachable') },
    undefined: () => { throw { get message () { throw undefined } } },
    'null-prototype': () => { throw { get message () { throw Object.create(null) } } }
  }[process.env.ATTACK_THROW] })
const outcome = await request('https://localhost:' + server.address().port + '/', { dispatcher: agent }).then(() => 'answered', err => err.code)
console.log(outcome)
await agent.destroy()
server.closeAllConnections()
server.close()
`

async function run (thrown: 'error' | 'undefined' | 'null-prototype'): Promise<{ code: number | null, stdout: string, stderr: string }> {
  return await new Promise(resolve => {
    const child = execFile(process.execPath, [...process.execArgv, '--input-type=module', '-e', attack], { cwd: src('.'), timeout: 20_000, env: { ...process.env, ATTACK_THROW: thrown } }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : (typeof error.code === 'number' ? error.code : null), stdout, stderr })
    })
    child.stdin?.end()
  })
}

t.test('control: the child process reports a refusal for a server() that throws an Error', async t => {
  const result = await run('error')
  t.equal(result.code, 0)
  t.equal(result.stdout.trim(), 'ERR_MTLS_SERVER_UNAUTHORIZED')
})

for (const inner of ['undefined', 'null-prototype'] as const) {
  t.test(`a server() that throws an object whose message getter throws ${inner === 'undefined' ? 'undefined' : 'a null-prototype object'} refuses the server, never crashes`, async t => {
    const result = await run(inner)
    // This got through before the fix: server-authorizer.ts check() reads `(err as Error)?.message` inside its catch; when that getter
    // throws, the throw escapes check(), and the connector's catch (agent.ts) reads `.message` of it (HEAD:
    // `(err as Error).message`, a TypeError on undefined) or stringifies it (`String(err)`, a TypeError on a
    // null-prototype object): a TypeError inside the TLS connect callback, an uncaught exception that ends the process.
    t.equal(result.code, 0, `the client process survives (stderr: ${result.stderr.split('\n').find(line => line.includes('TypeError')) ?? ''})`)
    t.equal(result.stdout.trim(), 'ERR_MTLS_SERVER_UNAUTHORIZED', 'and the server is refused')
  })
}
