import { X509Certificate } from 'node:crypto'
import t from 'tap'
import { createTestPki } from '../src/index.js'
import { fingerprint256 } from '../src/fingerprint.js'
import { readPemBlocks, toPem } from '../src/pem.js'

const pki = await createTestPki()

t.test('PEM blocks are read in order, text around them ignored, and written back as they were', async t => {
  const blocks = readPemBlocks(`subject=CN=x\n${pki.server.chain}trailing junk`)
  t.same(blocks.map(block => block.label), ['CERTIFICATE', 'CERTIFICATE'])
  t.equal(blocks.map(block => toPem(block.der, block.label)).join(''), pki.server.chain)
  t.equal(toPem(new Uint8Array(blocks[0]!.der).buffer, 'CERTIFICATE'), pki.server.certificate, 'an ArrayBuffer encodes like a Buffer')
})

t.test('a BEGIN line counts only when the next marker is its own END', async t => {
  const blocks = readPemBlocks(`-----BEGIN CERTIFICATE-----\n${pki.ca}-----END PRIVATE KEY-----\n${pki.server.certificate}`)
  t.same(blocks.map(block => block.label), ['CERTIFICATE', 'CERTIFICATE'], 'the dangling BEGIN is skipped, the real blocks kept')
  t.same(readPemBlocks('-----BEGIN lower case-----\nAAAA\n-----END lower case-----\n'), [], 'labels are upper case, digits and spaces')
  t.same(readPemBlocks('-----BEGIN CERTIFICATE'), [], 'a BEGIN line without its dashes')
  t.same(readPemBlocks('-----BEGIN CERTIFICATE-----\nAAAA\n'), [], 'a block without an END line')
})

t.test('2 MB of unmatched BEGIN lines is read in one pass and yields no block', async t => {
  const started = process.hrtime.bigint()
  t.same(readPemBlocks('-----BEGIN CERTIFICATE-----\n'.repeat(75_000)), [])
  t.ok(process.hrtime.bigint() - started < 2_000_000_000n, 'well under the minutes a quadratic reading takes')
})

t.test('fingerprint256 is Node\'s, for a DER Buffer or ArrayBuffer', async t => {
  const native = new X509Certificate(pki.server.certificate)
  t.equal(fingerprint256(native.raw), native.fingerprint256)
  t.equal(fingerprint256(new Uint8Array(native.raw).buffer), native.fingerprint256)
})
