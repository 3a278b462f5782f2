// A server() function whose thrown value cannot be described crashed the process: the connector's catch reads
// `.message` of whatever check() threw, and check() rethrows when reading the thrown object's message throws.
// The attack runs in a child process, so that a crash ends that process and not the test's. One child runs every
// case in turn, each printing its outcome as it ends: starting Node with the test loaders costs more than the cases.
import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { createTestPki } from 'mtls-pki'
import { hangLimit } from 'mtls-test-support'

const src = (path: string): string => fileURLToPath(new URL(path, import.meta.url))
const CASES = ['error', 'undefined', 'null-prototype'] as const
type Case = typeof CASES[number]

const attack = `
import { request } from 'undici'
import https from 'node:https'
import { createMtlsAgent } from ${JSON.stringify(src('../../src/index.ts'))}
const pki = JSON.parse(process.env.ATTACK_PKI)
const server = https.createServer({ cert: pki.serverChain, key: pki.serverKey, ca: pki.ca, requestCert: true }, (_q, s) => s.end('reached'))
await new Promise(resolve => server.listen(0, '127.0.0.1', resolve))
const thrown = {
  error: () => { throw new Error('policy store unreachable') },
  undefined: () => { throw { get message () { throw undefined } } },
  'null-prototype': () => { throw { get message () { throw Object.create(null) } } }
}
for (const name of ${JSON.stringify(CASES)}) {
  const agent = await createMtlsAgent({ cert: pki.clientChain, key: pki.clientKey, ca: pki.ca, server: thrown[name] })
  const outcome = await request('https://localhost:' + server.address().port + '/', { dispatcher: agent }).then(() => 'answered', err => err.code)
  console.log(name + ' ' + outcome)
  await agent.destroy()
}
server.closeAllConnections()
server.close()
`

// The test PKI is made here, once: making it again in the child would double the cost of the file.
const pki = await createTestPki()
const material = JSON.stringify({ serverChain: pki.server.chain, serverKey: pki.server.key, ca: pki.ca, clientChain: pki.orderService.chain, clientKey: pki.orderService.key })
const run = new Promise<{ code: number | null, outcomes: Map<string, string>, stderr: string }>(resolve => {
  // The limit only ends a child that hangs; a crash ends it at once.
  const child = execFile(process.execPath, [...process.execArgv, '--input-type=module', '-e', attack], { cwd: src('.'), timeout: hangLimit(60_000), env: { ...process.env, ATTACK_PKI: material } }, (error, stdout, stderr) => {
    const outcomes = new Map(stdout.trim().split('\n').map(line => line.split(' ') as [string, string]))
    resolve({ code: error === null ? 0 : (typeof error.code === 'number' ? error.code : null), outcomes, stderr })
  })
  child.stdin?.end()
})
const outcomeOf = async (name: Case): Promise<string> => (await run).outcomes.get(name) ?? 'none: the child process ended before this case'

t.test('control: the child process reports a refusal for a server() that throws an Error', async t => {
  t.equal(await outcomeOf('error'), 'ERR_MTLS_SERVER_UNAUTHORIZED')
})

for (const inner of ['undefined', 'null-prototype'] as const) {
  t.test(`a server() that throws an object whose message getter throws ${inner === 'undefined' ? 'undefined' : 'a null-prototype object'} refuses the server, never crashes`, async t => {
    const outcome = await outcomeOf(inner)
    const { code, stderr } = await run
    // This got through before the fix: server-authorizer.ts check() reads `(err as Error)?.message` inside its catch; when that getter
    // throws, the throw escapes check(), and the connector's catch (agent.ts) reads `.message` of it (HEAD:
    // `(err as Error).message`, a TypeError on undefined) or stringifies it (`String(err)`, a TypeError on a
    // null-prototype object): a TypeError inside the TLS connect callback, an uncaught exception that ends the process.
    t.equal(code, 0, `the client process survives (stderr: ${stderr.split('\n').find(line => line.includes('TypeError')) ?? ''})`)
    t.equal(outcome, 'ERR_MTLS_SERVER_UNAUTHORIZED', 'and the server is refused')
  })
}
