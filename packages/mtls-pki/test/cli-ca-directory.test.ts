import { X509Certificate } from 'node:crypto'
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { EXIT } from '../src/cli.js'
import { CA_DIRECTORY_FILES } from '../src/index.js'
import { cli, tempDir, usageError } from './cli-harness.js'

const noCa = (command: string, dir: string, why: string, shown = dir): string =>
  `mtls-pki ${command}: no CA in ${dir}${why}; run "mtls-pki init --dir ${shown}" first\n`

t.test('a command that needs a CA, given a directory without one, says to run init with that directory', async t => {
  const base = await tempDir(t)
  const missing = join(base, 'missing')
  const empty = join(base, 'empty')
  await mkdir(empty)
  await writeFile(join(empty, 'notes.txt'), 'not a CA\n')
  await writeFile(join(base, 'leaf.pem'), 'unused\n')
  const commands: Array<[string, (dir: string) => string[]]> = [
    ['issue', dir => ['issue', 'web', '--dir', dir]],
    ['revoke', dir => ['revoke', join(base, 'leaf.pem'), '--dir', dir]],
    ['crl', dir => ['crl', '--dir', dir]]
  ]
  for (const [command, argv] of commands) {
    t.same(await cli(...argv(missing)), { code: EXIT.failure, stdout: '', stderr: noCa(command, missing, ' (no such directory)') }, `${command}: missing directory`)
    t.same(await cli(...argv(empty)), { code: EXIT.failure, stdout: '', stderr: noCa(command, empty, '') }, `${command}: directory without CA files`)
  }
  t.same(await readdir(empty), ['notes.txt'], 'nothing was written into the empty directory')
})

t.test('the suggested init command can be pasted into a shell as it is, and then the command works', async t => {
  const dir = join(await tempDir(t), "Bob's pki")
  const result = await cli('issue', 'web', '--dir', dir)
  t.same(result, { code: EXIT.failure, stdout: '', stderr: noCa('issue', dir, ' (no such directory)', `'${dir.replace("'", "'\\''")}'`) })
  t.equal((await cli('init', '--dir', dir)).code, EXIT.ok)
  t.equal((await cli('issue', 'web', '--dir', dir)).code, EXIT.ok)
})

t.test('a file given as --dir, a broken CA file and a missing one are named as they are, not taken for a missing CA', async t => {
  const dir = await tempDir(t)
  t.equal((await cli('init', '--dir', dir)).code, EXIT.ok)
  const file = join(dir, CA_DIRECTORY_FILES.bundle)
  t.same(await cli('crl', '--dir', file), { code: EXIT.failure, stdout: '', stderr: `mtls-pki crl: ${file} is a file; --dir takes the CA directory that "mtls-pki init" made\n` })
  const below = join(file, 'pki')
  t.same(await cli('crl', '--dir', below), {
    code: EXIT.failure,
    stdout: '',
    stderr: `mtls-pki crl: ${join(below, CA_DIRECTORY_FILES.rootCert)}: cannot read (ENOTDIR: not a directory, open '${join(below, CA_DIRECTORY_FILES.rootCert)}')\n`
  }, 'a path through a file is reported as the system sees it')
  const root = join(dir, CA_DIRECTORY_FILES.rootCert)
  await writeFile(root, 'not a certificate\n')
  const garbled = await cli('issue', 'web', '--dir', dir)
  t.equal(garbled.code, EXIT.failure)
  t.match(garbled.stderr, new RegExp(`^mtls-pki issue: ${root.replace(/[.]/g, '\\.')}: not a readable certificate \\(.*\\)\n$`), 'a broken CA file is named, not taken for a missing CA')
  await rm(join(dir, CA_DIRECTORY_FILES.intermediateKey))
  const damaged = join(dir, CA_DIRECTORY_FILES.intermediateKey)
  t.same(await cli('crl', '--dir', dir), { code: EXIT.failure, stdout: '', stderr: `mtls-pki crl: ${damaged}: cannot read (no such file)\n` }, 'not "run init": init would refuse to replace the root')
})

t.test('init --help lists every file init writes, one line each, and init writes exactly those', async t => {
  const help = await cli('init', '--help')
  t.equal(help.code, EXIT.ok)
  const listed = [...help.stdout.matchAll(/^ {2}(\S+\.(?:pem|json)) {2,}(\S.*)$/gm)].map(([, file, what]) => ({ file, what }))
  t.same(listed.map(entry => entry.file), Object.values(CA_DIRECTORY_FILES), 'every file of CA_DIRECTORY_FILES, in order')
  t.match(help.stdout, /^ {2}revoked\.json {2,}the revocations recorded by `revoke`/m)
  t.match(help.stdout, /^ {2}root-key\.pem {2,}the root CA's private key \(mode 0600\)$/m)
  for (const { file, what } of listed) t.ok((what as string).length > 10, `${file as string} is described`)

  const dir = await tempDir(t)
  t.equal((await cli('init', '--dir', dir)).code, EXIT.ok)
  t.same((await readdir(dir)).sort(), [...Object.values(CA_DIRECTORY_FILES)].sort(), 'what init wrote is what its help lists')
})

t.test('revoke refuses a certificate file from another CA and the root itself, recording nothing', async t => {
  const base = await tempDir(t)
  const pki = join(base, 'pki')
  const other = join(base, 'other')
  for (const dir of [pki, other]) t.equal((await cli('init', '--dir', dir)).code, EXIT.ok)
  t.equal((await cli('issue', 'stranger', '--dir', other)).code, EXIT.ok)
  const stranger = join(other, 'stranger.pem')
  t.same(await cli('revoke', stranger, '--dir', pki), {
    code: EXIT.usage,
    stdout: '',
    stderr: usageError('revoke', `${stranger} was not issued by the CA in ${pki} (its issuer is another CA of the same name)`)
  }, 'both CAs have the default name: the key tells them apart')
  t.equal((await cli('init', '--dir', join(base, 'acme'), '--name', 'Acme')).code, EXIT.ok)
  t.equal((await cli('issue', 'acme', '--dir', join(base, 'acme'))).code, EXIT.ok)
  t.same((await cli('revoke', join(base, 'acme', 'acme.pem'), '--dir', pki)).stderr,
    usageError('revoke', `${join(base, 'acme', 'acme.pem')} was not issued by the CA in ${pki} (its issuer is CN=Acme intermediate CA)`))
  const root = join(pki, CA_DIRECTORY_FILES.rootCert)
  t.same(await cli('revoke', root, '--dir', pki), {
    code: EXIT.usage,
    stdout: '',
    stderr: usageError('revoke', `${root} is the root CA, which cannot be revoked; make a new CA with "mtls-pki init --dir ${pki} --force"`)
  })
  t.equal(await readFile(join(pki, CA_DIRECTORY_FILES.revoked), 'utf8'), '[]\n')

  const intermediate = join(pki, CA_DIRECTORY_FILES.intermediateCert)
  const serial = new X509Certificate(await readFile(intermediate)).serialNumber
  t.same(await cli('revoke', intermediate, '--dir', pki), { code: EXIT.ok, stdout: `revoked ${serial} (unspecified); CRL written to ${join(pki, 'crl.pem')}\n`, stderr: '' }, 'the intermediate file is still accepted')
})

t.test('a file the CLI cannot write is reported in one line with exit 1, not a stack trace', async t => {
  const dir = await tempDir(t)
  t.equal((await cli('init', '--dir', dir)).code, EXIT.ok)
  const out = join(dir, CA_DIRECTORY_FILES.bundle)
  t.same(await cli('issue', 'web', '--dir', dir, '--out', out), { code: EXIT.failure, stdout: '', stderr: `mtls-pki issue: ${out}: cannot create directory (EEXIST: file already exists)\n` })
  t.same(await cli('init', '--dir', join(out, 'pki')), { code: EXIT.failure, stdout: '', stderr: `mtls-pki init: ${join(out, 'pki')}: cannot create directory (ENOTDIR: not a directory)\n` })
  const crlOut = join(dir, 'no-such-dir', 'crl.pem')
  t.same(await cli('crl', '--dir', dir, '--out', crlOut), { code: EXIT.failure, stdout: '', stderr: `mtls-pki crl: ${crlOut}: cannot write (no such directory ${join(dir, 'no-such-dir')})\n` })
  const throughFile = join(out, 'sub', 'crl.pem')
  t.same(await cli('crl', '--dir', dir, '--out', throughFile), { code: EXIT.failure, stdout: '', stderr: `mtls-pki crl: ${throughFile}: cannot write (${join(out, 'sub')}: ENOTDIR: not a directory)\n` })
  t.same(await cli('crl', '--dir', dir, '--out', join(out, 'crl.pem')), { code: EXIT.failure, stdout: '', stderr: `mtls-pki crl: ${join(out, 'crl.pem')}: cannot write (${out} is not a directory)\n` })
})

t.test('an error that is neither the user\'s nor a file\'s is not hidden', async t => {
  const { runCli } = await import('../src/cli.js')
  const failing = { write: () => { throw new TypeError('stdout is gone') } }
  await t.rejects(runCli(['inspect', '--help'], { stdout: failing, stderr: failing }), new TypeError('stdout is gone'))
})
