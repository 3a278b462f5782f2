// The attack (issue 24): `mtls-pki issue` wrote a private key through a symbolic link planted in its output folder,
// so whoever could write to that folder chose where the key landed (a folder they read, say). Every file mtls-pki
// writes now refuses a link, or anything but a regular file, where it goes, before writing anything.
import { execFile } from 'node:child_process'
import { access, mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { EXIT } from '../../src/cli.js'
import { CA_DIRECTORY_FILES, PkiError, createRootCa, writeCertificateAuthority, writeCertificateFiles, writePrivateKey } from '../../src/index.js'
import { cli, cliProcess, tempDir } from '../cli-harness.js'
import { snapshot } from '../file-snapshot.js'

const run = promisify(execFile)
const root = await createRootCa()
const intermediate = await root.createIntermediate()
const issued = await intermediate.issue({ commonName: 'web' })

const linkRefusal = (file: string, target: string): string =>
  `${file} is a symbolic link (to ${target}); mtls-pki never writes through a link: remove it, or write to the file it points to`

// A folder outside the output folder, holding a file the attacker wants overwritten.
async function outside (t: Parameters<typeof tempDir>[0]): Promise<{ dir: string, victim: string, original: Record<string, string> }> {
  const dir = join(await tempDir(t), 'outside')
  await mkdir(dir)
  await writeFile(join(dir, 'victim.pem'), 'the attacker wants this overwritten\n')
  return { dir, victim: join(dir, 'victim.pem'), original: await snapshot(dir) }
}

// A CA directory made by `mtls-pki init` in a fresh folder.
async function caDirectory (t: Parameters<typeof tempDir>[0]): Promise<{ base: string, pki: string }> {
  const base = await tempDir(t)
  const pki = join(base, 'pki')
  const made = await cli('init', '--dir', pki)
  if (made.code !== EXIT.ok) throw new Error(made.stderr)
  return { base, pki }
}

// Puts a link to `target` where `file` is (or is not); the function it returns puts the file back.
async function plantLink (file: string, target: string): Promise<() => Promise<void>> {
  const original = await readFile(file, 'utf8').catch(() => null)
  await rm(file, { force: true })
  await symlink(target, file)
  return async () => {
    await rm(file)
    if (original !== null) await writeFile(file, original)
  }
}

t.test('issue refuses a symbolic link planted at the key\'s path: the installed CLI and the API', async t => {
  const { base, pki } = await caDirectory(t)
  const out = join(base, 'out')
  await mkdir(out)
  const elsewhere = await outside(t)
  const keyFile = join(out, 'web-key.pem')
  await symlink(elsewhere.victim, keyFile)
  // A dangling link is the sharper attack: the key would be created where the attacker reads.
  const planted = join(elsewhere.dir, 'planted-key.pem')
  await symlink(planted, join(out, 'api-key.pem'))
  const before = await snapshot(out)

  t.same(await cliProcess('issue', 'web', '--dir', pki, '--out', out), {
    code: EXIT.failure,
    stdout: '',
    stderr: `mtls-pki issue: ${linkRefusal(keyFile, elsewhere.victim)}\n`
  })
  t.equal((await cliProcess('issue', 'api', '--dir', pki, '--out', out)).code, EXIT.failure)
  const error = await writeCertificateFiles(out, 'web', issued).then(() => null, (err: unknown) => err)
  t.ok(error instanceof PkiError)
  t.match(error, { code: 'ERR_MTLS_PKI_SYMLINK_REFUSED', file: keyFile, message: linkRefusal(keyFile, elsewhere.victim) })
  await t.rejects(writePrivateKey(join(out, 'api-key.pem'), issued.key), { code: 'ERR_MTLS_PKI_SYMLINK_REFUSED' })

  t.same(await snapshot(elsewhere.dir), elsewhere.original, 'the file outside is untouched and nothing was created there')
  await t.rejects(access(planted), { code: 'ENOENT' }, 'no key where the dangling link pointed')
  t.same(await snapshot(out), before, 'the output folder still holds only the links: no certificate, no temporary file')
})

t.test('every file of every writer refuses a link, and one refusal writes none of the other files', async t => {
  const elsewhere = await outside(t)
  const dir = await tempDir(t)
  const writers: Array<[string, readonly string[], () => Promise<unknown>]> = [
    ['writeCertificateFiles', ['web.pem', 'web-key.pem', 'web-chain.pem', 'web-ca.pem'], async () => await writeCertificateFiles(dir, 'web', issued)],
    ['writeCertificateAuthority', Object.values(CA_DIRECTORY_FILES), async () => await writeCertificateAuthority(dir, intermediate, { force: true })]
  ]
  for (const [writer, files, write] of writers) {
    await write() // the old files, which a refusal must leave as they are
    for (const name of files) {
      const file = join(dir, name)
      const restore = await plantLink(file, elsewhere.victim)
      const before = await snapshot(dir)
      await t.rejects(write(), { code: 'ERR_MTLS_PKI_SYMLINK_REFUSED', file, message: linkRefusal(file, elsewhere.victim) }, `${writer}: ${name}`)
      t.same(await snapshot(dir), before, `${writer}: ${name}: nothing written`)
      await restore()
    }
  }
  t.same(await snapshot(elsewhere.dir), elsewhere.original)
})

t.test('every CLI command that writes refuses a link where it writes', async t => {
  const elsewhere = await outside(t)
  const { base, pki } = await caDirectory(t)
  t.equal((await cli('issue', 'web', '--dir', pki)).code, EXIT.ok)
  const cases: Array<[string, string, string[]]> = [
    ['init --force', CA_DIRECTORY_FILES.rootKey, ['init', '--dir', pki, '--force']],
    ['issue', 'web-chain.pem', ['issue', 'web', '--dir', pki]],
    ['revoke', CA_DIRECTORY_FILES.crl, ['revoke', join(pki, 'web.pem'), '--dir', pki]],
    ['crl', CA_DIRECTORY_FILES.crl, ['crl', '--dir', pki]],
    ['crl --out', 'elsewhere.pem', ['crl', '--dir', pki, '--out', join(pki, 'elsewhere.pem')]]
  ]
  for (const [command, name, argv] of cases) {
    const file = join(pki, name)
    const restore = await plantLink(file, elsewhere.victim)
    const before = await snapshot(pki)
    t.same(await cli(...argv), { code: EXIT.failure, stdout: '', stderr: `mtls-pki ${argv[0] as string}: ${linkRefusal(file, elsewhere.victim)}\n` }, command)
    t.same(await snapshot(pki), before, `${command}: nothing written`)
    await restore()
  }
  // Without --force, a dangling link at the root key is no CA to keep, and still no place to write.
  const fresh = join(base, 'fresh')
  await mkdir(fresh)
  await symlink(join(elsewhere.dir, 'root-key.pem'), join(fresh, CA_DIRECTORY_FILES.rootKey))
  t.same(await cli('init', '--dir', fresh), {
    code: EXIT.failure,
    stdout: '',
    stderr: `mtls-pki init: ${linkRefusal(join(fresh, CA_DIRECTORY_FILES.rootKey), join(elsewhere.dir, 'root-key.pem'))}\n`
  })
  t.same(await snapshot(elsewhere.dir), elsewhere.original)
})

t.test('an output folder that is a symbolic link is refused, naming it', async t => {
  const elsewhere = await outside(t)
  const { base, pki } = await caDirectory(t)
  const linked = join(base, 'linked')
  await symlink(elsewhere.dir, linked)
  const refusal = `${linked} is a symbolic link (to ${elsewhere.dir}); mtls-pki does not write into a linked directory: give the directory itself`
  await t.rejects(writeCertificateFiles(linked, 'web', issued), { code: 'ERR_MTLS_PKI_SYMLINK_REFUSED', file: linked, message: refusal })
  await t.rejects(writeCertificateAuthority(`${linked}/`, intermediate), { code: 'ERR_MTLS_PKI_SYMLINK_REFUSED', message: refusal }, 'a trailing slash changes nothing')
  for (const argv of [['issue', 'web', '--dir', pki, '--out', linked], ['init', '--dir', linked], ['crl', '--dir', pki, '--out', join(linked, 'crl.pem')]]) {
    t.same(await cli(...argv), { code: EXIT.failure, stdout: '', stderr: `mtls-pki ${argv[0] as string}: ${refusal}\n` }, argv.join(' '))
  }
  t.same(await snapshot(elsewhere.dir), elsewhere.original, 'nothing written into the linked folder')
  // A link further up is the user's own layout (macOS's /var is one) and is followed.
  await writeCertificateFiles(join(linked, 'below'), 'web', issued)
  t.equal(await readFile(join(elsewhere.dir, 'below', 'web.pem'), 'utf8'), issued.certificate)
})

t.test('a directory or a named pipe where a file goes is refused, not written into or waited on', async t => {
  const { pki } = await caDirectory(t)
  await mkdir(join(pki, 'web-key.pem'))
  // Opening a pipe for writing waits for a reader: the old writeFile hung here for ever.
  await run('mkfifo', [join(pki, 'api-chain.pem')])
  const before = await snapshot(pki)
  t.same(await cli('issue', 'web', '--dir', pki), {
    code: EXIT.failure,
    stdout: '',
    stderr: `mtls-pki issue: ${join(pki, 'web-key.pem')} is a directory, not a regular file; mtls-pki replaces regular files only\n`
  })
  await t.rejects(writeCertificateFiles(pki, 'api', issued), {
    code: 'ERR_MTLS_PKI_NOT_A_FILE',
    file: join(pki, 'api-chain.pem'),
    message: `${join(pki, 'api-chain.pem')} is a special file (a pipe, socket or device), not a regular file; mtls-pki replaces regular files only`
  })
  t.same(await snapshot(pki), before, 'nothing written')
})
