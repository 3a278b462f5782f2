// A key or certificate is never half written and a key is never readable by others, not even for a moment: each
// file is written to a new temporary file (created exclusively, a key with mode 0600) and renamed into place.
import { execFile } from 'node:child_process'
import { link, readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { EXIT } from '../../src/cli.js'
import { createRootCa, writeCertificateFiles, writePrivateKey } from '../../src/index.js'
import { cli, cliProcessUnder, tempDir } from '../cli-harness.js'
import { snapshot } from '../file-snapshot.js'

const run = promisify(execFile)
const root = await createRootCa()
const intermediate = await root.createIntermediate()
const issued = await intermediate.issue({ commonName: 'web' })
const mode = async (file: string): Promise<number> => (await stat(file)).mode & 0o777

const strace = await run('strace', ['-V']).then(() => true, () => false)

t.test('the installed CLI creates a key\'s file exclusively with mode 0600 and renames it into place, never changing a mode', {
  skip: strace ? false : 'strace is not installed: nothing else here can watch the system calls'
}, async t => {
  const base = await tempDir(t)
  const pki = join(base, 'pki')
  t.equal((await cli('init', '--dir', pki)).code, EXIT.ok)
  const trace = join(base, 'trace')
  const issuedByCli = await cliProcessUnder(['strace', '-f', '-qq', '-o', trace, '-e', 'trace=%file,fchmod'], 'issue', 'web', '--dir', pki)
  t.equal(issuedByCli.code, EXIT.ok, issuedByCli.stderr)
  const calls = (await readFile(trace, 'utf8')).split('\n').filter(line => line.includes(pki) || /chmod/.test(line))
  const keyFile = join(pki, 'web-key.pem')
  const created = calls.filter(line => /\bopenat\(/.test(line) && line.includes('O_CREAT'))
  t.match(created.find(line => line.includes('/.web-key.pem.')), /openat\(AT_FDCWD, "[^"]*\/\.web-key\.pem\.[0-9a-f]{16}\.tmp", O_WRONLY\|O_CREAT\|O_EXCL[^)]*, 0600\) = \d+/,
    'the key\'s temporary file is created, exclusively, with mode 0600')
  t.equal(created.length, 4, 'four files created, each a temporary one')
  for (const line of created) t.match(line, /\/\.web(-key|-chain|-ca)?\.pem\.[0-9a-f]{16}\.tmp", O_WRONLY\|O_CREAT\|O_EXCL/, 'each exclusively')
  t.same(calls.filter(line => /chmod/.test(line)), [], 'no mode is ever changed')
  t.match(calls.find(line => line.includes(`"${keyFile}"`) && /rename/.test(line)), /rename(at2?)?\(.*\.web-key\.pem\.[0-9a-f]{16}\.tmp".*\) = 0/, 'the key is renamed into place')
  t.same(calls.filter(line => line.includes(`"${keyFile}"`) && /\bopenat\(/.test(line)), [], 'the key\'s own path is never opened')
  t.equal(await mode(keyFile), 0o600)
})

t.test('keys are 0600 whatever the umask; certificates follow the umask', async t => {
  const dir = await tempDir(t)
  const previous = process.umask(0)
  t.teardown(() => { process.umask(previous) })
  const files = await writeCertificateFiles(dir, 'web', issued)
  t.equal(await mode(files.keyFile), 0o600)
  t.equal(await mode(files.certFile), 0o666)
  process.umask(0o077)
  await writeCertificateFiles(dir, 'web', issued)
  t.equal(await mode(files.keyFile), 0o600)
  t.equal(await mode(files.chainFile), 0o600)
})

t.test('a key written over an old one replaces the file: a hard link to the old key still holds it, with its mode', async t => {
  const dir = await tempDir(t)
  const keyFile = join(dir, 'web-key.pem')
  await writeFile(keyFile, 'old key\n', { mode: 0o644 })
  await link(keyFile, join(dir, 'old-key.pem'))
  await writePrivateKey(keyFile, issued.key)
  t.equal(await readFile(keyFile, 'utf8'), issued.key)
  t.equal(await mode(keyFile), 0o600, 'the new key is 0600 although the old file was 0644')
  t.equal(await readFile(join(dir, 'old-key.pem'), 'utf8'), 'old key\n', 'the old file was not written into')
  t.same(Object.keys(await snapshot(dir)), ['old-key.pem', 'web-key.pem'], 'no temporary file left')
})

t.test('a write that fails part-way leaves every old file as it was and no temporary file behind', async t => {
  const dir = await tempDir(t)
  const files = await writeCertificateFiles(dir, 'web', issued)
  const before = await snapshot(dir)
  const fresh = await intermediate.issue({ commonName: 'web' })
  // A chain that is not text fails inside Node after the key and the certificate are complete in their temporary files.
  await t.rejects(writeCertificateFiles(dir, 'web', { ...fresh, chain: 42 as unknown as string }), { code: 'ERR_INVALID_ARG_TYPE' })
  t.same(await snapshot(dir), before, 'the old key, certificate, chain and CA file, and nothing else')
  await t.rejects(writePrivateKey(files.keyFile, 42 as unknown as string), { code: 'ERR_INVALID_ARG_TYPE' })
  t.same(await snapshot(dir), before)
  const tooLong = join(dir, 'x'.repeat(300) + '-key.pem')
  await t.rejects(writeCertificateFiles(dir, 'x'.repeat(300), fresh), { code: 'ERR_MTLS_PKI_FILE_UNWRITABLE', file: tooLong, message: `${tooLong}: cannot write (ENAMETOOLONG: name too long)` })
  t.same(await snapshot(dir), before)
})

// The file size limit (RLIMIT_FSIZE) is a real failure of write(2), EFBIG, set for one process. Node ignores the
// SIGXFSZ that comes with it; tap's exit handler (in its tests and, through NODE_OPTIONS, their children) dies of it
// instead, so the installed CLI meets the limit as a user's shell runs it, without NODE_OPTIONS.
t.test('the installed CLI stopped by a file size limit leaves the old certificate files, and says which file', async t => {
  const dir = await tempDir(t)
  t.equal((await cli('init', '--dir', dir)).code, EXIT.ok)
  t.equal((await cli('issue', 'web', '--dir', dir)).code, EXIT.ok)
  const before = await snapshot(dir)
  const chainFile = join(dir, 'web-chain.pem')
  t.ok((await stat(chainFile)).size > 1024 && (await stat(join(dir, 'web-key.pem'))).size < 1024, 'the key fits under the limit, the chain does not')
  t.same(await cliProcessUnder(['env', '-u', 'NODE_OPTIONS', 'prlimit', '--fsize=1024:'], 'issue', 'web', '--dir', dir), {
    code: EXIT.failure,
    stdout: '',
    stderr: `mtls-pki issue: ${chainFile}: cannot write (EFBIG: file too large)\n`
  })
  t.same(await snapshot(dir), before, 'every old file as it was, no temporary file')
})
