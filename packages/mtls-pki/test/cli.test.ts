import { execFile, spawn } from 'node:child_process'
import { X509Certificate } from 'node:crypto'
import { EventEmitter } from 'node:events'
import { readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import t from 'tap'
import { runCli } from '../src/cli.js'
import { createTestPki } from '../src/index.js'
import { cli, cliProcess, tempDir, usageError } from './cli-harness.js'
import { connectOnce } from './tls-harness.js'

const run = promisify(execFile)

const mode = async (file: string): Promise<number> => (await stat(file)).mode & 0o777

t.test('init makes a CA directory with private keys readable by the owner only', async t => {
  const dir = await tempDir(t)
  const result = await cli('init', '--dir', dir, '--name', 'Acme')
  t.equal(result.code, 0, result.stderr)
  t.match(result.stdout, 'made CN=Acme root CA and CN=Acme intermediate CA')
  for (const file of ['root.pem', 'intermediate.pem', 'ca.pem', 'crl.pem', 'revoked.json']) {
    t.ok((await stat(join(dir, file))).isFile(), `${file} written`)
  }
  t.equal(await mode(join(dir, 'root-key.pem')), 0o600)
  t.equal(await mode(join(dir, 'intermediate-key.pem')), 0o600)
  t.equal(await readFile(join(dir, 'ca.pem'), 'utf8'), await readFile(join(dir, 'root.pem'), 'utf8'), 'the bundle is the root')

  const again = await cli('init', '--dir', dir)
  t.equal(again.code, 1, 'an existing CA is not replaced')
  t.match(again.stderr, `${join(dir, 'root-key.pem')} already exists; pass --force`)
  const forced = await cli('init', '--dir', dir, '--force', '--key-type', 'p384', '--days', '30')
  t.equal(forced.code, 0)
  t.equal(new X509Certificate(await readFile(join(dir, 'root.pem'))).publicKey.asymmetricKeyDetails?.namedCurve, 'secp384r1')
})

t.test('issue makes certificates that openssl verify accepts and that complete an mTLS handshake', async t => {
  const dir = await tempDir(t)
  const out = join(dir, 'certs')
  t.equal((await cli('init', '--dir', dir)).code, 0)
  const server = await cli('issue', 'payment', '--dir', dir, '--out', out, '--server', '--dns', 'localhost', '--ip', '127.0.0.1', '--spiffe', 'spiffe://mycompany.com/production/payment-service')
  t.equal(server.code, 0, server.stderr)
  t.match(server.stdout, /issued payment: serial [0-9A-F]+/)
  const before = Date.now()
  const client = await cli('issue', 'order', '--dir', dir, '--out', out, '--client', '--spiffe', 'spiffe://mycompany.com/production/order-service', '--days', '30')
  const after = Date.now()
  t.equal(client.code, 0, client.stderr)
  t.equal(await mode(join(out, 'order-key.pem')), 0o600)

  const leaf = new X509Certificate(await readFile(join(out, 'order.pem')))
  t.equal(leaf.subjectAltName, 'URI:spiffe://mycompany.com/production/order-service')
  t.same(leaf.keyUsage, ['1.3.6.1.5.5.7.3.2'], '--client gives clientAuth only')
  const validTo = new Date(leaf.validTo).getTime() // whole seconds
  t.ok(validTo >= before - 1000 + 30 * 86400e3 && validTo <= after + 30 * 86400e3, '--days 30')
  const both = await cli('issue', 'both', '--dir', dir, '--client', '--server')
  t.equal(both.code, 0)
  t.same(new X509Certificate(await readFile(join(dir, 'both.pem'))).keyUsage, ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2'])
  t.equal(new X509Certificate(await readFile(join(dir, 'both.pem'))).subject, 'CN=both', 'the name is the CN when nothing else names it')

  for (const name of ['payment', 'order']) {
    const verified = await run('openssl', ['verify', '-CAfile', join(dir, 'root.pem'), '-untrusted', join(dir, 'intermediate.pem'), join(out, `${name}.pem`)])
    t.equal(verified.stdout.trim(), `${join(out, `${name}.pem`)}: OK`, `openssl verify accepts ${name}`)
  }

  const files = async (name: string, suffix: string): Promise<string> => await readFile(join(out, `${name}${suffix}.pem`), 'utf8')
  const { server: seen, client: saw } = await connectOnce(
    { key: await files('payment', '-key'), cert: await files('payment', '-chain'), ca: await files('payment', '-ca'), requestCert: true, rejectUnauthorized: true },
    { key: await files('order', '-key'), cert: await files('order', '-chain'), ca: await files('order', '-ca') }
  )
  t.equal(seen?.authorized, true, 'the server verified the CLI-issued client')
  t.equal(saw.authorized, true, 'the client verified the CLI-issued server')
})

t.test('revoke and crl produce a CRL that makes the server refuse the certificate', async t => {
  const dir = await tempDir(t)
  await cli('init', '--dir', dir)
  await cli('issue', 'server', '--dir', dir, '--server', '--dns', 'localhost')
  await cli('issue', 'bad', '--dir', dir, '--client')
  await cli('issue', 'good', '--dir', dir, '--client')
  const badSerial = new X509Certificate(await readFile(join(dir, 'bad.pem'))).serialNumber

  const revoked = await cli('revoke', join(dir, 'bad.pem'), '--dir', dir, '--reason', 'keyCompromise')
  t.equal(revoked.code, 0, revoked.stderr)
  t.match(revoked.stdout, `revoked ${badSerial} (keyCompromise)`)
  const recorded = JSON.parse(await readFile(join(dir, 'revoked.json'), 'utf8')) as Array<{ serialNumber: string, issuer: string }>
  t.match(recorded, [{ serialNumber: badSerial, issuer: 'intermediate' }])

  const read = async (name: string): Promise<string> => await readFile(join(dir, name), 'utf8')
  const serverOptions = { key: await read('server-key.pem'), cert: await read('server-chain.pem'), ca: await read('ca.pem'), requestCert: true, rejectUnauthorized: false }
  const crl = await read('crl.pem')
  const bad = await connectOnce({ ...serverOptions, crl: crl.split(/(?<=-----END X509 CRL-----\n)/) }, { key: await read('bad-key.pem'), cert: await read('bad-chain.pem'), ca: await read('ca.pem') })
  t.equal(bad.server?.authorizationError, 'CERT_REVOKED')
  const good = await connectOnce({ ...serverOptions, crl: crl.split(/(?<=-----END X509 CRL-----\n)/) }, { key: await read('good-key.pem'), cert: await read('good-chain.pem'), ca: await read('ca.pem') })
  t.equal(good.server?.authorized, true)

  const goodSerial = new X509Certificate(await read('good.pem')).serialNumber
  t.equal((await cli('revoke', goodSerial, '--dir', dir)).code, 0, 'revoke by serial number')
  const intermediateSerial = new X509Certificate(await read('intermediate.pem')).serialNumber
  t.equal((await cli('revoke', intermediateSerial, '--dir', dir)).code, 0, 'the intermediate is revoked by the root')
  const entries = JSON.parse(await read('revoked.json')) as Array<{ serialNumber: string, issuer: string }>
  t.match(entries.find(e => e.serialNumber === intermediateSerial), { issuer: 'root' })

  const fresh = await cli('crl', '--dir', dir, '--out', join(dir, 'fresh.pem'), '--days', '1')
  t.equal(fresh.code, 0)
  t.match(fresh.stdout, 'CRL with 3 revoked certificate(s)')
  const inspected = await cli('inspect', join(dir, 'fresh.pem'))
  t.match(inspected.stdout, new RegExp(`revoked: +${badSerial}, ${goodSerial}\n`))
  t.match(inspected.stdout, /next update: +\S+ \(0 days left\)/)
  t.match(inspected.stdout, new RegExp(`revoked: +${intermediateSerial}\n`))
  t.equal((await cli('crl', '--dir', dir)).code, 0, 'crl rewrites DIR/crl.pem by default')
})

t.test('inspect shows each field of a certificate for a person', async t => {
  const dir = await tempDir(t)
  const pki = await createTestPki()
  await writeFile(join(dir, 'server.pem'), pki.server.chain)
  const result = await cli('inspect', join(dir, 'server.pem'))
  t.equal(result.code, 0)
  const native = new X509Certificate(pki.server.certificate)
  const [leaf] = result.stdout.split(/\n(?=\S)/)
  const field = (name: string): string | undefined => leaf?.match(new RegExp(`^  ${name}: +(.*)$`, 'm'))?.[1]
  t.match(leaf, `${join(dir, 'server.pem')} [1/2]`)
  t.equal(field('subject'), 'CN=localhost')
  t.match(leaf, /SANs: +URI:spiffe:\/\/mycompany\.com\/production\/payment-service\n +DNS:localhost\n +IP:127\.0\.0\.1\n +IP:::1\n/)
  t.equal(field('issuer'), 'CN=mtls-pki test intermediate CA')
  t.equal(field('serial'), native.serialNumber)
  t.equal(field('key'), 'ECDSA P-256')
  t.equal(field('not before'), new Date(native.validFrom).toISOString())
  t.equal(field('not after'), `${new Date(native.validTo).toISOString()} (89 days left)`)
  t.equal(field('CA'), 'no')
  t.equal(field('key usage'), 'digitalSignature')
  t.equal(field('ext key usage'), 'serverAuth')
  t.equal(field('SHA-256'), native.fingerprint256)
  t.match(result.stdout, /\[2\/2\]\n {2}subject: +CN=mtls-pki test intermediate CA\n/)
  t.match(result.stdout, /CA: +yes/)

  const oddities: Array<[string, string, RegExp]> = [
    ['expired.pem', pki.expired.certificate, /not after: +\S+ \(EXPIRED 1 day ago\)/],
    ['future.pem', pki.notYetValid.certificate, /not after: +\S+ \(NOT YET VALID, starts in 1 day\)/],
    ['nosan.pem', pki.noSan.certificate, /SANs: +\(none\)/],
    ['injection.pem', pki.sanInjection.certificate, /SANs: +DNS:"evil\.example, URI:spiffe:\/\/mycompany\.com\/production\/admin"\n/],
    ['key.pem', pki.server.key, /private key: +ECDSA P-256 \(not shown\)/],
    ['other.pem', '-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n', /block: +CERTIFICATE REQUEST \(not inspected\)/]
  ]
  for (const [name, pem, expected] of oddities) {
    await writeFile(join(dir, name), pem)
    const inspected = await cli('inspect', join(dir, name))
    t.equal(inspected.code, 0, name)
    t.match(inspected.stdout, expected, name)
  }
  const keyOutput = (await cli('inspect', join(dir, 'key.pem'))).stdout
  t.notMatch(keyOutput, pki.server.key.split('\n')[1] as string, 'no key material is printed')
})

t.test('inspect describes SEC1, PKCS#1, RSA and Ed25519 keys without printing them', async t => {
  const dir = await tempDir(t)
  const { createPrivateKey } = await import('node:crypto')
  const rsa = await createTestPki({ keyType: 'rsa2048' })
  const ed = await createTestPki({ keyType: 'ed25519' })
  const sec1 = createPrivateKey((await createTestPki()).server.key).export({ type: 'sec1', format: 'pem' }) as string
  const pkcs1 = createPrivateKey(rsa.server.key).export({ type: 'pkcs1', format: 'pem' }) as string
  const cases: Array<[string, string, string]> = [['sec1.pem', sec1, 'ECDSA P-256'], ['pkcs1.pem', pkcs1, 'RSA 2048'], ['ed.pem', ed.server.key, 'Ed25519']]
  for (const [name, pem, description] of cases) {
    await writeFile(join(dir, name), pem)
    t.match((await cli('inspect', join(dir, name))).stdout, new RegExp(`private key: +${description} \\(not shown\\)`))
  }
})

t.test('unreadable and malformed files exit 1 naming the file and the reason', async t => {
  const dir = await tempDir(t)
  const missing = await cli('inspect', join(dir, 'nope.pem'))
  t.equal(missing.code, 1)
  t.match(missing.stderr, `${join(dir, 'nope.pem')}: cannot read (no such file)`)
  await writeFile(join(dir, 'text.pem'), 'hello\n')
  const text = await cli('inspect', join(dir, 'text.pem'))
  t.equal(text.code, 1)
  t.match(text.stderr, `${join(dir, 'text.pem')}: no PEM block found`)
  await writeFile(join(dir, 'broken.pem'), '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n')
  const broken = await cli('inspect', join(dir, 'broken.pem'))
  t.equal(broken.code, 1)
  t.match(broken.stderr, `${join(dir, 'broken.pem')}: malformed CERTIFICATE`)
  await cli('init', '--dir', dir)
  await writeFile(join(dir, 'revoked.json'), '{oops')
  const badJson = await cli('crl', '--dir', dir)
  t.equal(badJson.code, 1)
  t.match(badJson.stderr, `${join(dir, 'revoked.json')}: not valid JSON`)
  await writeFile(join(dir, 'revoked.json'), '{}')
  t.match((await cli('crl', '--dir', dir)).stderr, 'expected a list of revocations')
  await writeFile(join(dir, 'revoked.json'), '[]')
  const notCert = await cli('revoke', join(dir, 'text.pem'), '--dir', dir)
  t.equal(notCert.code, 1)
  t.match(notCert.stderr, `${join(dir, 'text.pem')}: not a PEM certificate`)
})

t.test('--help on every command prints its options and exits 0', async t => {
  for (const command of ['init', 'issue', 'revoke', 'crl', 'inspect']) {
    const result = await cli(command, '--help')
    t.equal(result.code, 0)
    t.match(result.stdout, `mtls-pki ${command}`)
    t.equal(result.stderr, '')
  }
  for (const argv of [['--help'], ['-h'], ['help']]) {
    const result = await cli(...argv)
    t.equal(result.code, 0)
    t.match(result.stdout, /Commands:\n {2}init/)
  }
})

t.test('the installed mtls-pki bin runs the CLI with its exit codes', async t => {
  const help = await cliProcess('issue', '--help')
  t.equal(help.code, 0)
  t.match(help.stdout, /^mtls-pki issue NAME --dir DIR/)
  t.match(help.stdout, 'Existing files of those names are replaced')
  t.same(await cliProcess('inspect'), { code: 2, stdout: '', stderr: usageError('inspect', 'missing FILE') })
  const dir = await tempDir(t)
  t.same(await cliProcess('crl', '--dir', join(dir, 'nowhere')), {
    code: 1,
    stdout: '',
    stderr: `mtls-pki crl: no CA in ${join(dir, 'nowhere')} (no such directory); run "mtls-pki init --dir ${join(dir, 'nowhere')}" first\n`
  })
})

t.test('a reader that stops early (mtls-pki inspect ... | head) ends the CLI quietly, not with a stack trace', async t => {
  const dir = await tempDir(t)
  await writeFile(join(dir, 'chain.pem'), (await createTestPki()).server.chain)
  const bin = fileURLToPath(new URL('../bin/mtls-pki.js', import.meta.url))
  const child = spawn(process.execPath, [bin, 'inspect', ...Array.from({ length: 20 }, () => join(dir, 'chain.pem'))], { stdio: ['ignore', 'pipe', 'pipe'] })
  child.stdout.destroy() // closed before the CLI writes: every write meets EPIPE
  let stderr = ''
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  const code = await new Promise(resolve => child.on('close', resolve))
  t.equal(stderr, '')
  t.equal(code, 0)
})

t.test('only a closed pipe is let go on stdout; any other stream error still surfaces', async t => {
  const stdout = Object.assign(new EventEmitter(), { write: () => true })
  await runCli(['--help'], { stdout, stderr: stdout })
  await runCli(['--version'], { stdout, stderr: stdout })
  t.equal(stdout.listenerCount('error'), 1, 'one listener, however often the CLI runs')
  t.doesNotThrow(() => stdout.emit('error', Object.assign(new Error('write EPIPE'), { code: 'EPIPE' })))
  t.throws(() => stdout.emit('error', Object.assign(new Error('write EIO'), { code: 'EIO' })), { code: 'EIO' })
})
