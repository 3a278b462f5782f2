// A file of unmatched BEGIN lines made PEM reading quadratic: 1 MB blocked the event loop for 3 s, 2 MB for
// 43 s. Reading is now one linear pass, and material files have a size limit.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { createTestPki } from 'mtls-pki'
import { loadMaterial } from '../../src/index.js'
import { readPemBlocks } from '../../src/internal.js'

const pki = await createTestPki()
const dir = await mkdtemp(join(tmpdir(), 'pem-junk-'))
t.teardown(() => rm(dir, { recursive: true, force: true }))

const TWO_MB = 2 * 1024 * 1024
const junk: Record<string, string> = {
  'unmatched BEGIN lines': '-----BEGIN CERTIFICATE-----\n'.repeat(TWO_MB / 28),
  'BEGIN lines with distinct labels': Array.from({ length: TWO_MB / 32 }, (_, i) => `-----BEGIN L${i}-----\n`).join(''),
  'BEGIN lines without dashes': '-----BEGIN CERTIFICATE\n'.repeat(TWO_MB / 24),
  'BEGIN then END of another label': '-----BEGIN A-----\n-----END B-----\n'.repeat(TWO_MB / 34),
  dashes: '-'.repeat(TWO_MB)
}

t.test('2 MB of any junk is read in one pass and yields no block', async t => {
  for (const [what, text] of Object.entries(junk)) t.same(readPemBlocks(text), [], what)
})

t.test('a material file over the size limit is refused with a code, unread', async t => {
  const file = join(dir, 'junk.pem')
  await writeFile(file, junk['unmatched BEGIN lines']!)
  await t.rejects(loadMaterial({ certFile: file, key: pki.server.key, ca: pki.ca }, { side: 'server' }), { code: 'ERR_MTLS_MATERIAL_FILE_TOO_LARGE', file, message: /1048576 bytes is the limit \(maxFileBytes\)/ })
  await t.rejects(loadMaterial({ cert: junk.dashes!, key: pki.server.key, ca: pki.ca }, { side: 'server' }), { code: 'ERR_MTLS_MATERIAL_FILE_TOO_LARGE', message: /^cert option: 2097152 bytes/ })
  await t.rejects(loadMaterial({ cert: pki.server.chain, key: pki.server.key, ca: pki.ca, maxFileBytes: 0 }, { side: 'server' }), { code: 'ERR_MTLS_MATERIAL_OPTION_INVALID' })
})

t.test('with a higher limit, 2 MB of junk in every file fails as no PEM, not after minutes', async t => {
  for (const [what, text] of Object.entries(junk)) {
    const file = join(dir, 'big.pem')
    await writeFile(file, text)
    await t.rejects(loadMaterial({ certFile: file, key: pki.server.key, ca: pki.ca, maxFileBytes: 4 * TWO_MB }, { side: 'server' }), { code: 'ERR_MTLS_MATERIAL_NO_PEM' }, what)
    await t.rejects(loadMaterial({ cert: pki.server.chain, key: pki.server.key, caFile: file, maxFileBytes: 4 * TWO_MB }, { side: 'server' }), { code: 'ERR_MTLS_MATERIAL_CA_EMPTY' }, `${what} as the CA file`)
  }
})

t.test('a BEGIN line counts only when the next marker is its own END', async t => {
  const blocks = readPemBlocks(`junk\n-----BEGIN CERTIFICATE-----\n${pki.ca}-----END PRIVATE KEY-----\n${pki.server.certificate}`)
  t.same(blocks.map(block => block.label), ['CERTIFICATE', 'CERTIFICATE'], 'the dangling BEGIN is skipped, the real blocks kept')
  t.equal(blocks[0]!.pem, pki.ca)
  t.same(readPemBlocks('-----BEGIN lower case-----\nAAAA\n-----END lower case-----\n'), [], 'labels are upper case, digits and spaces')
})
