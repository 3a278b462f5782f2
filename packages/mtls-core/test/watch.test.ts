import { mkdir, mkdtemp, open, rename, rm, symlink, unlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { createTestPki, type IssuedCertificate } from 'mtls-pki'
import { hangLimit } from 'mtls-test-support'
import { MaterialSource, createMaterialSource, type Material, type MaterialSourceOptions } from '../src/index.js'

const pki = await createTestPki()
const issue = async (): Promise<IssuedCertificate> => await pki.intermediate.issue({ usage: 'server', dnsNames: ['localhost'], spiffeId: 'spiffe://mycompany.com/production/payment-service' })

async function tempDir (t: { teardown: (fn: () => unknown) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'mtls-core-watch-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

/** Writes the server's files into a fresh directory and starts a source on them. */
async function startSource (t: { teardown: (fn: () => unknown) => void }, options: Partial<MaterialSourceOptions> = {}): Promise<{ source: MaterialSource, files: { certFile: string, keyFile: string, caFile: string } }> {
  const dir = await tempDir(t)
  const files = { certFile: join(dir, 'cert.pem'), keyFile: join(dir, 'key.pem'), caFile: join(dir, 'ca.pem') }
  await Promise.all([writeFile(files.certFile, pki.server.chain), writeFile(files.keyFile, pki.server.key), writeFile(files.caFile, pki.ca)])
  const source = await createMaterialSource(files, { side: 'server', debounceMs: 20, ...options })
  t.teardown(() => source.close())
  return { source, files }
}

/** Resolves with the next event of that kind; fails after a bound so that no test hangs. */
async function next (source: MaterialSource, event: 'update', match?: (m: Material) => boolean): Promise<Material>
async function next (source: MaterialSource, event: 'error', match?: (e: Error) => boolean): Promise<Error>
async function next (source: MaterialSource, event: 'update' | 'error', match: (value: never) => boolean = () => true): Promise<Material | Error> {
  return await new Promise((resolve, reject) => {
    const timer = setTimeout(() => { source.off(event, listener); reject(new Error(`no ${event} event within ${hangLimit(30)} s`)) }, hangLimit(30_000))
    const listener = (value: Material | Error): void => {
      if (!match(value as never)) return
      clearTimeout(timer)
      source.off(event, listener)
      resolve(value)
    }
    source.on(event as 'update', listener as (m: Material) => void)
  })
}

function record (source: MaterialSource): { updates: Material[], errors: Error[] } {
  const seen = { updates: [] as Material[], errors: [] as Error[] }
  source.on('update', material => seen.updates.push(material))
  source.on('error', error => seen.errors.push(error))
  return seen
}

async function writeAtomically (file: string, text: string): Promise<void> {
  await writeFile(`${file}.tmp`, text)
  await rename(`${file}.tmp`, file)
}

t.test('a kubelet AtomicWriter rotation (..data symlink swap) is seen and delivered whole', async t => {
  const dir = await tempDir(t)
  const writeVersion = async (name: string, issued: IssuedCertificate): Promise<void> => {
    await mkdir(join(dir, name))
    await Promise.all([
      writeFile(join(dir, name, 'tls.crt'), issued.chain),
      writeFile(join(dir, name, 'tls.key'), issued.key),
      writeFile(join(dir, name, 'ca.crt'), issued.ca)
    ])
  }
  await writeVersion('..2026_11_23_12_00_00.1', pki.server)
  await symlink('..2026_11_23_12_00_00.1', join(dir, '..data'))
  for (const file of ['tls.crt', 'tls.key', 'ca.crt']) await symlink(join('..data', file), join(dir, file))

  const source = await createMaterialSource({ certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key'), caFile: join(dir, 'ca.crt') }, { side: 'server', debounceMs: 50 })
  t.teardown(() => source.close())
  const seen = record(source)
  t.equal(source.current.leaf.fingerprint256, pki.server.fingerprint256)

  let previous = '..2026_11_23_12_00_00.1'
  for (let round = 2; round <= 3; round++) {
    const issued = await issue()
    const version = `..2026_11_23_12_00_00.${round}`
    await writeVersion(version, issued)
    const updated = next(source, 'update', m => m.leaf.fingerprint256 === issued.fingerprint256)
    await symlink(version, join(dir, '..data_tmp'))
    await rename(join(dir, '..data_tmp'), join(dir, '..data'))
    await rm(join(dir, previous), { recursive: true })
    previous = version
    t.equal((await updated).leaf.fingerprint256, issued.fingerprint256, `round ${round}: the new certificate`)
    t.equal(source.current.leaf.fingerprint256, issued.fingerprint256)
  }
  t.same(seen.errors, [], 'no error along the way')
  t.equal(seen.updates.length, 2, 'one update per rotation')
})

t.test('rename-over (editors, cert-manager, spiffe-helper) of key and certificate together, watched or polled', async t => {
  const modes: Array<[string, Partial<MaterialSourceOptions>]> = [['watching', { debounceMs: 100 }], ['polling, where watching is not available', { poll: 50 }]]
  for (const [mode, options] of modes) {
    const { source, files } = await startSource(t, options)
    const seen = record(source)
    const issued = await issue()
    const updated = next(source, 'update')
    await writeAtomically(files.keyFile, issued.key)
    await writeAtomically(files.certFile, issued.chain)
    t.equal((await updated).leaf.fingerprint256, issued.fingerprint256, mode)
    // Between the two renames the files do not match: a reload that falls there (a poll, or a debounce outlived by
    // a slow second write on a busy machine) is refused, and the pair is taken whole on the next.
    t.same(seen.errors.map(error => (error as Error & { code?: string }).code).filter(code => code !== 'ERR_MTLS_MATERIAL_KEY_MISMATCH'), [],
      `${mode}: nothing refused but the key and certificate of the moment between the renames`)
    t.same(seen.updates.map(material => material.leaf.fingerprint256), [issued.fingerprint256], `${mode}: one update, the new pair together`)
    t.equal(source.lastFailure, null, `${mode}: no failure left`)
  }
})

t.test('in-place truncate-then-write never delivers a half-written file', async t => {
  const { source, files } = await startSource(t)
  const seen = record(source)
  const issued = await issue()
  const chain = issued.chain
  const updated = next(source, 'update', m => m.leaf.fingerprint256 === issued.fingerprint256)

  // Write the key, then the certificate in place in two halves with a pause between, as a slow writer would.
  await writeFile(files.keyFile, issued.key)
  // Listening before the certificate is touched: on a busy machine the reload may read the half-written file before
  // sync() returns, and the same refused bytes are not announced twice.
  const refused = next(source, 'error', error => (error as Error & { code?: string }).code !== 'ERR_MTLS_MATERIAL_KEY_MISMATCH')
  const handle = await open(files.certFile, 'r+')
  await handle.truncate(0)
  await handle.write(chain.slice(0, 300), 0)
  await handle.sync()
  await refused // the half-written (or emptied) certificate is refused
  await handle.write(chain.slice(300), 300)
  await handle.close()
  await updated
  t.ok(seen.updates.every(m => m.leaf.fingerprint256 === issued.fingerprint256), 'only the whole new certificate was delivered')
  t.ok(seen.errors.length >= 1)
  t.equal(source.lastFailure, null, 'the failure is cleared by the good reload')
})

t.test('deletion keeps the old material; re-creation delivers the new', async t => {
  const { source, files } = await startSource(t)
  const failed = next(source, 'error')
  await unlink(files.certFile)
  t.match(await failed, { code: 'ERR_MTLS_MATERIAL_FILE_UNREADABLE', message: /cert\.pem: cannot read \(no such file\)/ })
  t.equal(source.current.leaf.fingerprint256, pki.server.fingerprint256, 'the old certificate stays')
  t.match(source.lastFailure, { error: { code: 'ERR_MTLS_MATERIAL_FILE_UNREADABLE' } })
  const issued = await issue()
  const updated = next(source, 'update')
  await writeFile(files.keyFile, issued.key)
  await writeFile(files.certFile, issued.chain)
  t.equal((await updated).leaf.fingerprint256, issued.fingerprint256)
})

t.test('a key rotated before its certificate waits for the certificate', async t => {
  const { source, files } = await startSource(t)
  const issued = await issue()
  const failed = next(source, 'error')
  await writeAtomically(files.keyFile, issued.key)
  t.match(await failed, { code: 'ERR_MTLS_MATERIAL_KEY_MISMATCH' })
  t.equal(source.current.leaf.fingerprint256, pki.server.fingerprint256, 'still the old pair')
  const updated = next(source, 'update')
  await writeAtomically(files.certFile, issued.chain)
  t.equal((await updated).leaf.fingerprint256, issued.fingerprint256)
})

t.test('bad replacements are refused and the old material keeps serving', async t => {
  const { source, files } = await startSource(t)
  const replacements: Array<[string, () => Promise<void>, string]> = [
    ['a corrupt certificate', async () => { await writeAtomically(files.certFile, '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n') }, 'ERR_MTLS_MATERIAL_CERT_MALFORMED'],
    ['an expired certificate', async () => { await writeAtomically(files.keyFile, pki.expired.key); await writeAtomically(files.certFile, pki.expired.chain) }, 'ERR_MTLS_MATERIAL_EXPIRED'],
    ['a certificate from another CA', async () => { await writeAtomically(files.keyFile, pki.otherCa.key); await writeAtomically(files.certFile, pki.otherCa.chain) }, 'ERR_MTLS_MATERIAL_UNTRUSTED_CHAIN']
  ]
  for (const [what, replace, code] of replacements) {
    // Two files are replaced one after the other: a reload may fall between them (and be refused for that mix).
    const failed = next(source, 'error', error => (error as Error & { code?: string }).code === code)
    await replace()
    t.match(await failed, { code }, what)
    t.equal(source.current.leaf.fingerprint256, pki.server.fingerprint256, `${what}: the old certificate stays`)
  }
  const seen = record(source)
  await t.rejects(source.reload(), { code: 'ERR_MTLS_MATERIAL_UNTRUSTED_CHAIN' })
  await t.rejects(source.reload(), { code: 'ERR_MTLS_MATERIAL_UNTRUSTED_CHAIN' })
  t.same(seen.errors.map(e => e.message), [], 'the same refused files are not announced again')
})

t.test('reload() re-reads on demand, switches inputs, and refuses bad ones without switching', async t => {
  const source = await MaterialSource.create({ cert: pki.server.chain, key: pki.server.key, ca: pki.ca }, { side: 'server' })
  t.teardown(() => source.close())
  const seen = record(source)
  const before = source.current
  t.equal(source.lastReload, null, 'nothing reloaded yet')
  t.equal(await source.reload(), before, 'unchanged input: the same material, no update')
  t.equal(source.lastReload, null, 'an unchanged reload applies nothing')
  t.equal(seen.updates.length, 0)

  const issued = await issue()
  const updated = await source.reload({ cert: issued.chain, key: issued.key, ca: pki.ca })
  t.equal(updated.leaf.fingerprint256, issued.fingerprint256)
  t.equal(seen.updates.length, 1)
  t.match(source.lastReload, { ok: true, at: Date })

  await t.rejects(source.reload({ cert: pki.expired.chain, key: pki.expired.key, ca: pki.ca }), { code: 'ERR_MTLS_MATERIAL_EXPIRED' })
  t.equal(source.current, updated, 'the refused input did not replace the material')
  t.match(source.lastReload, { ok: false, error: { code: 'ERR_MTLS_MATERIAL_EXPIRED', message: /expired/ } })
  t.equal(seen.errors.length, 1, 'the refusal was announced')
  t.equal(await source.reload(), updated, 'and the previous input is still the one reloaded')

  const [a, b] = await Promise.all([source.reload(), source.reload()])
  t.equal(a, b, 'concurrent reloads share one result')
})

t.test('an invalid first load throws; watching starts only for files', async t => {
  await t.rejects(createMaterialSource({ cert: pki.expired.chain, key: pki.expired.key, ca: pki.ca }, { side: 'client' }), { code: 'ERR_MTLS_MATERIAL_EXPIRED' })
  await t.rejects(createMaterialSource({ certFile: '/nonexistent/dir/cert.pem', key: pki.server.key, ca: pki.ca }, { side: 'server' }), { code: 'ERR_MTLS_MATERIAL_FILE_UNREADABLE' })
  const dir = await tempDir(t)
  await writeFile(join(dir, 'cert.pem'), pki.server.chain)
  const unwatched = await createMaterialSource({ certFile: join(dir, 'cert.pem'), key: pki.server.key, ca: pki.ca }, { side: 'server', watch: false })
  t.teardown(() => unwatched.close())
  const seen = record(unwatched)
  const issued = await issue()
  await writeFile(join(dir, 'cert.pem'), issued.chain)
  await t.rejects(unwatched.reload(), { code: 'ERR_MTLS_MATERIAL_KEY_MISMATCH' }, 'only an explicit reload reads the files')
  t.equal(seen.errors.length, 1)
  t.equal(seen.updates.length, 0, 'no watcher acted on the change')
})
