// Attacks on how material files are read: a FIFO, a device, a file at the size limit, PEM with CRLF line
// ends, interleaved labels and dashes in the body. A FIFO in place of a material file (a mistaken mount, a
// process substitution, an attacker with write access to the directory but not the files) makes open()
// block in libuv's thread pool until a writer appears: the reload never settles, every later reload joins
// it, and each such file ties up one of the pool's four threads (fs, DNS lookups, async crypto of the whole
// process). The other cases are refused or read correctly, and are kept as coverage.
import { execFile } from 'node:child_process'
import { constants, openSync, closeSync } from 'node:fs'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { createTestPki } from 'mtls-pki'
import { hangLimit } from 'mtls-test-support'
import { createMaterialSource, loadMaterial } from '../../src/index.js'
import { readPemBlocks } from '../../src/internal.js'

const pki = await createTestPki()
const dir = await mkdtemp(join(tmpdir(), 'review-material-files-'))
t.teardown(() => rm(dir, { recursive: true, force: true }))

// 'pending' after a hang limit: these promises settle at once when the files are refused, and never when a read blocks.
async function settled<T> (promise: Promise<T>, ms = hangLimit(20_000)): Promise<'pending' | 'resolved' | 'rejected'> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<'pending'>(resolve => { timer = setTimeout(() => resolve('pending'), ms) })
  try {
    return await Promise.race([promise.then(() => 'resolved' as const, () => 'rejected' as const), timeout])
  } finally {
    clearTimeout(timer)
  }
}

// Lets a reader blocked in open() of a FIFO through (it then reads end of file).
function release (fifo: string): void {
  try { closeSync(openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK)) } catch {} // ENXIO: nobody is waiting
}

t.test('a FIFO in place of a material file is refused, not waited on forever', async t => {
  const files = { certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key'), caFile: join(dir, 'ca.crt') }
  await writeFile(files.certFile, pki.server.chain)
  await writeFile(files.keyFile, pki.server.key)
  await writeFile(files.caFile, pki.ca)
  const source = await createMaterialSource(files, { side: 'server', watch: false })
  t.teardown(() => source.close())

  const fifos = [join(dir, 'fifo.crt'), join(dir, 'fifo.key'), join(dir, 'fifo-ca.crt'), join(dir, 'fifo.crl')]
  for (const fifo of fifos) await promisify(execFile)('mkfifo', [fifo])
  t.teardown(() => { for (const fifo of fifos) release(fifo) })
  const reload = source.reload({ certFile: fifos[0], keyFile: fifos[1], caFile: fifos[2], crlFile: fifos[3] })
  const outcome = await settled(reload)
  // Meanwhile the thread pool is full: any fs call of the process waits too.
  const otherWork = await settled(readFile(files.caFile))
  const plainReload = await settled(source.reload())
  for (const fifo of fifos) release(fifo)
  await reload.catch(() => {})
  // This got through before the fix: 'pending' for all three: material.ts readText() open()s the file blocking, without checking it is
  // a regular file. Only a writer opening the FIFO ends it (release() above).
  t.equal(outcome, 'rejected', 'reload() with FIFOs rejects promptly (ERR_MTLS_MATERIAL_FILE_UNREADABLE)')
  t.equal(otherWork, 'resolved', 'the rest of the process can still read files')
  t.equal(plainReload, 'resolved', 'a reload of the files in service is not stuck behind it')
})

t.test('/dev/zero and /dev/urandom as material files are refused at once', async t => {
  for (const device of ['/dev/zero', '/dev/urandom']) {
    t.equal(await settled(loadMaterial({ certFile: device, key: pki.server.key, ca: pki.ca }, { side: 'server' })), 'rejected', device)
    await t.rejects(loadMaterial({ cert: pki.server.chain, key: pki.server.key, caFile: device }, { side: 'server' }), { code: /^ERR_MTLS_MATERIAL_/g }, `${device} as the CA file`)
  }
})

t.test('maxFileBytes: exactly the limit is read, one byte more is refused unread', async t => {
  const limit = 1024 * 1024
  const padded = (size: number): string => pki.server.chain + '#'.repeat(size - Buffer.byteLength(pki.server.chain))
  const atLimit = join(dir, 'at-limit.crt')
  const overLimit = join(dir, 'over-limit.crt')
  await writeFile(atLimit, padded(limit))
  await writeFile(overLimit, padded(limit + 1))
  const loaded = await loadMaterial({ certFile: atLimit, key: pki.server.key, ca: pki.ca }, { side: 'server' })
  t.equal(loaded.leaf.fingerprint256, pki.server.fingerprint256, '1 MiB exactly is read')
  await t.rejects(loadMaterial({ certFile: overLimit, key: pki.server.key, ca: pki.ca }, { side: 'server' }), { code: 'ERR_MTLS_MATERIAL_FILE_TOO_LARGE', file: overLimit })
})

t.test('PEM with CRLF, interleaved labels and dashes in a body', async t => {
  const crlf = pki.server.chain.replaceAll('\n', '\r\n')
  const loaded = await loadMaterial({ cert: crlf, key: pki.server.key.replaceAll('\n', '\r\n'), ca: pki.ca.replaceAll('\n', '\r\n') }, { side: 'server' })
  t.equal(loaded.leaf.fingerprint256, pki.server.fingerprint256, 'CRLF files load as LF ones')
  t.notOk(loaded.cert.includes('\r'), 'and are normalised for OpenSSL')

  const [leaf, intermediate] = readPemBlocks(pki.server.chain)
  const body = (pem: string): string => pem.split('\n').slice(1, -2).join('\n')
  // A CRL's BEGIN line inside a certificate block, and a certificate whose END belongs to another label.
  const interleaved = `-----BEGIN CERTIFICATE-----\n${body(leaf!.pem)}\n-----BEGIN X509 CRL-----\n${body(intermediate!.pem)}\n-----END CERTIFICATE-----\n-----END X509 CRL-----\n`
  t.same(readPemBlocks(interleaved), [], 'no block is made of parts of two')
  const dashed = `-----BEGIN CERTIFICATE-----\n${body(leaf!.pem).slice(0, 40)}-----${body(leaf!.pem).slice(40)}\n-----END CERTIFICATE-----\n`
  t.same(readPemBlocks(dashed), [], 'dashes inside a body end it: no truncated certificate is made')
  await t.rejects(loadMaterial({ cert: interleaved + dashed, key: pki.server.key, ca: pki.ca }, { side: 'server' }), { code: 'ERR_MTLS_MATERIAL_NO_PEM' })
})
