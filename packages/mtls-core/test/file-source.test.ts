import { createHash } from 'node:crypto'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { createTestPki } from 'mtls-pki'
import { until } from 'mtls-test-support'
import { createFileSource, createMaterialSource, type FileSource, type FileSourceSpec } from '../src/index.js'
import { within } from './helpers.js'

async function tempDir (t: { teardown: (fn: () => unknown) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'mtls-core-file-source-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

/** A source of one JSON file holding { version: number }. */
function jsonSpec (file: string): FileSourceSpec<{ version: number }, string> {
  return {
    files: () => [file],
    read: async () => {
      const raw = await readFile(file, 'utf8')
      return { raw, digest: createHash('sha256').update(raw).digest('hex') }
    },
    validate: raw => {
      const value = JSON.parse(raw) as { version: number }
      if (typeof value.version !== 'number') throw Object.assign(new Error(`${file}: no version`), { code: 'NO_VERSION' })
      return value
    }
  }
}

const nextEvent = async (source: FileSource<any>, event: 'update' | 'error'): Promise<unknown[]> => await within(new Promise(resolve => {
  const listener = (...args: unknown[]): void => { source.off(event, listener); resolve(args) }
  source.on(event as 'error', listener)
}), event)

t.test('read, validate, apply, commit: a refused apply commits nothing and the old value keeps serving', async t => {
  const dir = await tempDir(t)
  const file = join(dir, 'state.json')
  await writeFile(file, '{"version":1}')
  const source = await createFileSource(jsonSpec(file), { debounceMs: 20 })
  t.teardown(() => source.close())
  const served: number[] = [1]
  let refuse = true
  source.on('apply', value => { served.push(value.version) })
  source.on('apply', value => { if (refuse && value.version === 2) throw Object.assign(new Error('the server refused it'), { code: 'REFUSED' }) })
  const errors: Error[] = []
  const updates: Array<{ version: number, failedAttempts: number }> = []
  source.on('error', error => errors.push(error))
  source.on('update', (value, _previous, info) => updates.push({ version: value.version, failedAttempts: info.failedAttempts }))

  const failed = nextEvent(source, 'error')
  await writeFile(file, '{"version":2}')
  t.match((await failed)[0], { code: 'REFUSED' })
  t.same(source.current, { version: 1 }, 'nothing committed')
  t.same(served, [1, 2, 1], 'the listener that applied it was given the previous value back')
  t.match(source.lastReload, { ok: false, error: { code: 'REFUSED', message: 'the server refused it' } })
  t.equal(updates.length, 0)

  await t.rejects(source.reload(), { code: 'REFUSED' }, 'reload() tries the same files again')
  t.equal(errors.length, 1, 'the same failure is told once')
  await t.rejects(source.reload(), { code: 'REFUSED' })

  refuse = false
  t.same(await source.reload(), { version: 2 }, 'when applying works, the same files are committed')
  t.same(updates, [{ version: 2, failedAttempts: 3 }], 'the update says how many attempts failed before it')
  t.match(source.lastReload, { ok: true })
  t.ok(source.lastReload!.at.getTime() >= Date.now() - 1000, 'the new success time')
})

t.test('a validation failure is told once per distinct content; going back to what serves clears it', async t => {
  const dir = await tempDir(t)
  const file = join(dir, 'state.json')
  await writeFile(file, '{"version":1}')
  const source = await createFileSource(jsonSpec(file), { debounceMs: 20, watch: false })
  const errors: Error[] = []
  source.on('error', error => errors.push(error))
  await writeFile(file, '{}')
  await t.rejects(source.reload(), { code: 'NO_VERSION' })
  await t.rejects(source.reload(), { code: 'NO_VERSION' })
  t.equal(errors.length, 1)
  const since = source.lastFailure!.since
  await until(() => Date.now() > since.getTime(), 'the clock to move on')
  await writeFile(file, '{"other":1}')
  await t.rejects(source.reload(), { code: 'NO_VERSION' })
  t.equal(errors.length, 2, 'other bytes failing are told again')
  t.equal(source.lastFailure?.since, since, 'the run of failures began at the first one')
  t.ok(source.lastFailure!.at > since)
  await writeFile(file, '{"version":1}')
  t.same(await source.reload(), { version: 1 })
  t.equal(source.lastFailure, null, 'back to the bytes in service: the failure is over')
  t.match(source.lastReload, { ok: true })
})

t.test('the first read must succeed: create throws', async t => {
  const dir = await tempDir(t)
  await t.rejects(createFileSource(jsonSpec(join(dir, 'missing.json'))), { code: 'ENOENT' })
})

t.test('MaterialSource.reload(input) with files elsewhere: the watcher follows them', async t => {
  const pki = await createTestPki()
  const [one, two] = [await tempDir(t), await tempDir(t)]
  const write = async (dir: string, issued: { chain: string, key: string }): Promise<{ certFile: string, keyFile: string, caFile: string }> => {
    const files = { certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key'), caFile: join(dir, 'ca.crt') }
    await Promise.all([writeFile(files.certFile, issued.chain), writeFile(files.keyFile, issued.key), writeFile(files.caFile, pki.ca)])
    return files
  }
  const source = await createMaterialSource(await write(one, pki.server), { side: 'server', debounceMs: 20 })
  t.teardown(() => source.close())
  const moved = await pki.intermediate.issue({ usage: 'server', dnsNames: ['localhost'] })
  await source.reload(await write(two, moved))
  t.equal(source.current.leaf.fingerprint256, moved.fingerprint256)
  const rotated = await pki.intermediate.issue({ usage: 'server', dnsNames: ['localhost'] })
  const updated = nextEvent(source, 'update')
  await write(two, rotated)
  await updated
  t.equal(source.current.leaf.fingerprint256, rotated.fingerprint256, 'a change in the new directory is seen')
})
