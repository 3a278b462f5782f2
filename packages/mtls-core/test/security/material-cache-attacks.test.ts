// Attacks on the validation caches of material (material-validate.ts: each CA input parsed once by its text, a CA
// and CRL set OpenSSL took not given to it again). Each test marked "Found" found a problem: it fails until the code
// is fixed.
import t from 'tap'
import { createTestPki } from 'mtls-pki'
import { loadMaterial } from '../../src/index.js'
import { caInputsParsed } from '../../src/material-validate.js'

const pki = await createTestPki()

// Found (fixed: kept by the bytes of their text, 32 MiB): parsedCaInputs (material-validate.ts, then MAX_PARSED_CA_INPUTS = 20,000) is bounded by the number of CA inputs,
// not by their size, and keeps each input's whole text (the key) and its parsed certificates until 20,000 other
// inputs came after it. A CA bundle file of a few MB that changes now and then (a trust-manager bundle, a federated
// bundle written to disk) leaves every past version in memory: 20,000 versions of a 3.6 MB bundle is 70 GB of text,
// before the X509Certificate objects. Nothing in use holds these versions any more.
t.test('a CA bundle no longer in use is not held: after 36 MB of other bundles, the first one is read again', async t => {
  // What the cache is bounded by is the inputs' text: a few CAs padded with explanatory text (which PEM allows) make
  // about 0.9 MB each, cheap to parse, so 40 versions pass the 32 MiB kept.
  const blocks = 2
  const bundle = (version: number): string => `# bundle version ${version} ${'x'.repeat(900_000)}\n${pki.ca.repeat(blocks)}`
  const load = async (version: number): ReturnType<typeof loadMaterial> =>
    await loadMaterial({ cert: pki.server.chain, key: pki.server.key, ca: bundle(version) }, { side: 'server' })
  const first = await load(0)
  t.equal(first.authorities.length, blocks)
  for (let version = 1; version <= 40; version++) await load(version)
  const before = caInputsParsed()
  await load(0)
  t.equal(caInputsParsed(), before + 1, 'the first bundle was let go, and is read again')
  await load(0)
  t.equal(caInputsParsed(), before + 1, 'while the bundle in use is kept')
})

// Found (fixed: each material gets its own Dates): caForms (material-validate.ts) handed every material the same CertificateSummary object for a CA whose input
// text is unchanged; summarizeCertificate copies notBefore and notAfter so that "a Date can be changed" without harm,
// but the copy is now shared too: one caller that changes a Date of one material's authorities changes it in every
// later material with that CA (status pages, expiry warnings of the trust).
t.test('a Date changed in one material\'s CA summary does not change the next material\'s', async t => {
  const load = async (): ReturnType<typeof loadMaterial> => await loadMaterial({ cert: pki.server.chain, key: pki.server.key, ca: pki.ca }, { side: 'server' })
  const first = await load()
  const notAfter = (first.authorities[0] as { notAfter: Date }).notAfter.getTime()
  ;(first.authorities[0] as { notAfter: Date }).notAfter.setTime(0)
  const next = await load()
  t.equal((next.authorities[0] as { notAfter: Date }).notAfter.getTime(), notAfter)
})
