// The forwarded-certificate verifier against OpenSSL on generated chains: fast-check mutates conforming chains
// (algorithms, keys, extensions, validity, names, encodings, CRLs and their scope) and every case is judged by
// ChainVerifier, `openssl verify` and a real TLS handshake (differential-judges.ts). The verifier must never accept
// what either OpenSSL judge refuses; a disagreement shows the chain and CRLs as PEM. Cases come in batches that share
// a root and a CRL file, each with an intermediate of its own name, so one `openssl verify` run and one TLS server
// judge a whole batch. DIFFERENTIAL_CASES sets how many cases to judge (default 500: `pnpm test` runs this file on two runtimes,
// each with a seed of its own, so 1,000 different cases; before a release, `DIFFERENTIAL_CASES=20000` searches deeper); DIFFERENTIAL_DISCOVER=1 shows
// each case the verifier alone refuses.
import fc from 'fast-check'
import t from 'tap'
import { hangLimit } from 'mtls-test-support'
import { createTestPki } from 'mtls-pki'
import {
  CLIENT_AUTH, KU, KeyPool, SERVER_AUTH, algorithms, caExtensions, clientExtensions, extensions as ext, forgeCrl, issueCa, issueLeaf,
  keyIdentifier, name, nullValue, oid, rsaPss, selfSignedCa, sequence, timeText, tlv, type Authority, type Extension, type ForgeKey, type KeyKind,
  type SignatureAlgorithm, type Tampering
} from 'mtls-test-support/certificate-forge'
import { disagreement, judge, type DifferentialCase, type DifferentialGroup, type Verdicts } from './differential-judges.js'

t.setTimeout(hangLimit(300_000))

const CASES = Number(process.env.DIFFERENTIAL_CASES ?? 500)
const BATCH = 100
const HOUR = 3_600_000
const DAY = 24 * HOUR

const pki = await createTestPki()
const server = { cert: pki.server.chain, key: pki.server.key }
// RSA key generation is slow: keys are made once and signed with many times.
const pool = new KeyPool({ p256: 16, p384: 3, p521: 2, ed25519: 3, ed448: 2, rsa2048: 4, rsa1024: 1, rsa768: 1, secp112r1: 1, p224: 1, secp256k1: 1, 'p256-explicit': 1 })

const GOOD_KEYS: KeyKind[] = ['p256', 'p256', 'p256', 'p384', 'p521', 'ed25519', 'ed448', 'rsa2048']
const WEAK_KEYS: KeyKind[] = ['rsa1024', 'rsa768', 'secp112r1', 'p224', 'secp256k1', 'p256-explicit']
const keyKind = fc.oneof({ weight: 19, arbitrary: fc.constantFrom(...GOOD_KEYS) }, { weight: 1, arbitrary: fc.constantFrom(...WEAK_KEYS) })
// Which kind of signature algorithm an issuer uses for its key: one of the allowlist, a weak one, one off the allowlist.
const algorithmKind = fc.oneof({ weight: 18, arbitrary: fc.constant('allowed' as const) }, { weight: 1, arbitrary: fc.constant('weak' as const) }, { weight: 1, arbitrary: fc.constant('unlisted' as const) })

const LEAF_MUTATIONS = [
  'no AKI', 'AKI of another key', 'critical AKI', 'critical SKI', 'unknown critical', 'unknown non-critical', 'certificate policies',
  'nsCertType client', 'nsCertType server', 'proxyCertInfo', 'RFC 3779', 'policy constraints', 'EKU serverAuth', 'EKU any', 'EKU both',
  'no EKU', 'KU keyEncipherment', 'KU keyCertSign', 'no KU', 'no basic constraints', 'CA:TRUE', 'path length', 'empty SAN', 'no SAN',
  'DNS SAN', 'empty subject', 'empty subject, critical SAN', 'subject in another string type', 'expired', 'not yet valid', 'valid for 40 years', 'version 1',
  'outer algorithm', 'unused bits', 'bytes after the signature', 'bytes after the certificate', 'BER length', 'corrupt signature',
  'two basic constraints', 'time without seconds', 'serial with a leading zero', 'signed by another key'
] as const
const CA_MUTATIONS = [
  'basic constraints not critical', 'CA:FALSE', 'no KU', 'KU without keyCertSign', 'KU without cRLSign', 'no SKI', 'path length 0',
  'EKU serverAuth', 'EKU clientAuth', 'name constraints', 'policy mappings', 'unknown critical', 'expired', 'not yet valid',
  'outer algorithm', 'corrupt signature', 'AKI of another key', 'no AKI', 'not presented'
] as const
// CRLs that cover the leaf and do not list it, then those that revoke it, break, or leave it out.
const GOOD_CRL_MODES = ['complete', 'shards', 'delta beside complete', 'user certificates only'] as const
const BAD_CRL_MODES = [
  'revoked', 'revoked in its shard, other shard newer', 'older CRL lists it', 'unknown critical', 'critical entry extension', 'expired',
  'not yet valid', 'corrupt signature', 'newer impostor', 'CA certificates only', 'delta only', 'SHA-1 signed', 'none'
] as const
const CRL_MODES = [...GOOD_CRL_MODES, ...BAD_CRL_MODES]

// Most certificates keep their conforming shape; the rest get one or two changes.
const mutations = <T> (names: readonly T[]): fc.Arbitrary<T[]> => fc.oneof(
  { weight: 3, arbitrary: fc.constant([] as T[]) },
  { weight: 1, arbitrary: fc.array(fc.constantFrom(...names), { minLength: 1, maxLength: 2 }) }
)

const caseSpec = fc.record({
  caKey: keyKind,
  caAlgorithm: algorithmKind,
  caMutations: mutations(CA_MUTATIONS),
  leafKey: keyKind,
  leafAlgorithm: algorithmKind,
  algorithmPick: fc.nat(),
  leafMutations: mutations(LEAF_MUTATIONS),
  crl: fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...GOOD_CRL_MODES) }, { weight: 1, arbitrary: fc.constantFrom(...BAD_CRL_MODES) }),
  // The leaf's CRL distribution point: none, or one of the two shards.
  distributionPoint: fc.constantFrom('none', 'a', 'b')
})
type CaseSpec = typeof caseSpec extends fc.Arbitrary<infer T> ? T : never

const batchSpec = fc.record({
  rootKey: fc.constantFrom<KeyKind>('p256', 'p384', 'rsa2048', 'ed25519'),
  // Most batches check CRLs (CRL_CHECK_ALL); the root's CRL is sometimes scoped to CA certificates.
  crls: fc.constantFrom('none', 'root CRL', 'root CRL', 'root CRL of CA certificates'),
  cases: fc.array(caseSpec, { minLength: BATCH, maxLength: BATCH })
})
type BatchSpec = typeof batchSpec extends fc.Arbitrary<infer T> ? T : never

// Signature algorithms by issuer key kind: allowed ones, weak ones (MD5, SHA-1), ones off the allowlist.
function algorithmFor (key: ForgeKey, kind: 'allowed' | 'weak' | 'unlisted', pick: number): SignatureAlgorithm {
  const choose = (list: SignatureAlgorithm[]): SignatureAlgorithm => list[pick % list.length] as SignatureAlgorithm
  if (key.kind === 'ed25519') return algorithms.ed25519
  if (key.kind === 'ed448') return algorithms.ed448
  if (key.kind.startsWith('rsa')) {
    // RSA-PSS needs room for the hash and salt: only the 2048-bit keys sign with it.
    const pss = (...list: SignatureAlgorithm[]): SignatureAlgorithm[] => key.kind === 'rsa2048' ? list : []
    if (kind === 'weak') return choose([algorithms.rsaSha1, algorithms.rsaMd5Oiw, algorithms.rsaMd5, ...pss(rsaPss('sha1'))])
    if (kind === 'unlisted') return choose([algorithms.rsaSha224, algorithms.rsaSha256NoNull, ...pss(rsaPss('sha256', { mgf1: 'sha1' }), rsaPss('sha256', { saltLength: 0 }))])
    return choose([algorithms.rsaSha256, algorithms.rsaSha384, algorithms.rsaSha512, ...pss(rsaPss('sha256'), rsaPss('sha384'), rsaPss('sha512'))])
  }
  if (kind === 'weak') return algorithms.ecdsaSha1
  if (kind === 'unlisted') return choose([algorithms.ecdsaSha224, algorithms.ecdsaSha256WithNull])
  return choose([algorithms.ecdsaSha256, algorithms.ecdsaSha384, algorithms.ecdsaSha512])
}

const without = (list: Extension[], ...oids: string[]): Extension[] => list.filter(extension => !oids.includes(extension.oid))
const replace = (list: Extension[], extension: Extension): Extension[] => [...without(list, extension.oid), extension]

function validity (mutated: (name: string) => boolean, now: number): { notBefore: Date, notAfter: Date } {
  if (mutated('expired')) return { notBefore: new Date(now - 30 * DAY), notAfter: new Date(now - DAY) }
  if (mutated('not yet valid')) return { notBefore: new Date(now + DAY), notAfter: new Date(now + 30 * DAY) }
  if (mutated('valid for 40 years')) return { notBefore: new Date(now - DAY), notAfter: new Date(now + 40 * 365 * DAY) }
  return { notBefore: new Date(now - DAY), notAfter: new Date(now + 30 * DAY) }
}

function tampering (mutated: (name: string) => boolean): Tampering {
  return {
    ...(mutated('outer algorithm') ? { outerAlgorithm: algorithms.ecdsaSha384.identifier } : {}),
    ...(mutated('unused bits') ? { unusedBits: 3 } : {}),
    ...(mutated('bytes after the signature') ? { afterSignature: nullValue() } : {}),
    ...(mutated('bytes after the certificate') ? { afterCertificate: nullValue() } : {}),
    ...(mutated('BER length') ? { longOuterLength: true } : {}),
    ...(mutated('corrupt signature') ? { corruptSignature: true } : {})
  }
}

interface Built { group: DifferentialGroup, specs: CaseSpec[] }

// The first cases of a run each carry one mutation in turn, so that every mutation is tried whatever the run's size
// and seed (drawn at random alone, a rare one would be missed now and then); the rest are as generated.
let forcedCases = 0
function withForcedMutation (caseSpec: CaseSpec): CaseSpec {
  const turn = forcedCases++
  const leaf = LEAF_MUTATIONS[turn]
  const ca = CA_MUTATIONS[turn]
  const crl = CRL_MODES[turn]
  return {
    ...caseSpec,
    ...(leaf === undefined || caseSpec.leafMutations.includes(leaf) ? {} : { leafMutations: [...caseSpec.leafMutations, leaf] }),
    ...(ca === undefined || caseSpec.caMutations.includes(ca) ? {} : { caMutations: [...caseSpec.caMutations, ca] }),
    ...(crl === undefined ? {} : { crl })
  }
}

function buildBatch (spec: BatchSpec, batch: number): Built {
  const now = Date.now()
  const rootKey = pool.take(spec.rootKey)
  const root = selfSignedCa({ key: rootKey, subject: name(['O', 'differential property'], ['CN', `root ${batch}`]) })
  const crls: Buffer[] = []
  if (spec.crls !== 'none') crls.push(forgeCrl({ issuer: root, ...(spec.crls === 'root CRL of CA certificates' ? { extraExtensions: [ext.issuingDistributionPoint({ onlyCa: true })] } : {}) }))
  const specs = spec.cases.map(withForcedMutation)
  const cases = specs.map((caseSpec, index) => buildCase(caseSpec, root, `${batch}-${index}`, now, spec.crls !== 'none' ? crls : null))
  return { group: { roots: [root.certificate], crls, cases }, specs }
}

function buildCase (spec: CaseSpec, root: Authority, id: string, now: number, crls: Buffer[] | null): DifferentialCase {
  const caMutated = (mutation: string): boolean => spec.caMutations.includes(mutation as typeof CA_MUTATIONS[number])
  const leafMutated = (mutation: string): boolean => spec.leafMutations.includes(mutation as typeof LEAF_MUTATIONS[number])

  // The intermediate: its own name, so that cases of a batch never stand for each other.
  const caKey = pool.take(spec.caKey)
  let caExts = caExtensions(caKey, root)
  if (caMutated('basic constraints not critical')) caExts = replace(caExts, ext.basicConstraints(true, { critical: false }))
  if (caMutated('CA:FALSE')) caExts = replace(caExts, ext.basicConstraints(false))
  if (caMutated('path length 0')) caExts = replace(caExts, ext.basicConstraints(true, { pathLength: 0 }))
  if (caMutated('no KU')) caExts = without(caExts, '2.5.29.15')
  if (caMutated('KU without keyCertSign')) caExts = replace(caExts, ext.keyUsage(KU.cRLSign | KU.digitalSignature))
  if (caMutated('KU without cRLSign')) caExts = replace(caExts, ext.keyUsage(KU.keyCertSign))
  if (caMutated('no SKI')) caExts = without(caExts, '2.5.29.14')
  if (caMutated('no AKI')) caExts = without(caExts, '2.5.29.35')
  if (caMutated('AKI of another key')) caExts = replace(caExts, ext.authorityKeyIdentifier({ keyIdentifier: Buffer.alloc(20, 3) }))
  if (caMutated('EKU serverAuth')) caExts.push(ext.extendedKeyUsage([SERVER_AUTH]))
  if (caMutated('EKU clientAuth')) caExts.push(ext.extendedKeyUsage([CLIENT_AUTH]))
  if (caMutated('name constraints')) caExts.push(ext.nameConstraints(['example.org']))
  if (caMutated('policy mappings')) caExts.push(ext.policyMappings('1.3.6.1.4.1.55555.1', '1.3.6.1.4.1.55555.2'))
  if (caMutated('unknown critical')) caExts.push(ext.unknown(true))
  const intermediate: Authority = issueCa(root, {
    key: caKey,
    subject: name(['O', 'differential property'], ['CN', `intermediate ${id}`]),
    algorithm: algorithmFor(root.key, spec.caAlgorithm, spec.algorithmPick),
    ...validity(caMutated, now),
    extensions: caExts,
    tamper: tampering(caMutated)
  })

  // The leaf.
  const key = pool.take(spec.leafKey)
  let extensions = clientExtensions(key, intermediate, `spiffe://mycompany.com/production/case-${id}`)
  if (leafMutated('no AKI')) extensions = without(extensions, '2.5.29.35')
  if (leafMutated('AKI of another key')) extensions = replace(extensions, ext.authorityKeyIdentifier({ keyIdentifier: Buffer.alloc(20, 5) }))
  if (leafMutated('critical AKI') && intermediate.keyIdentifier !== null) extensions = replace(extensions, ext.authorityKeyIdentifier({ keyIdentifier: intermediate.keyIdentifier }, true))
  if (leafMutated('critical SKI')) extensions = replace(extensions, ext.subjectKeyIdentifier(keyIdentifier(key.spki), true))
  if (leafMutated('unknown critical')) extensions.push(ext.unknown(true))
  if (leafMutated('unknown non-critical')) extensions.push(ext.unknown(false, '1.3.6.1.4.1.55555.1.2'))
  if (leafMutated('certificate policies')) extensions.push(ext.certificatePolicies(['2.5.29.32.0']))
  if (leafMutated('nsCertType client')) extensions.push(ext.nsCertType(1 << 0))
  if (leafMutated('nsCertType server')) extensions.push(ext.nsCertType(1 << 1))
  if (leafMutated('proxyCertInfo')) extensions.push(ext.proxyCertInfo())
  if (leafMutated('RFC 3779')) extensions.push(ext.ipAddrBlocks([[[10, 0, 0, 0], 8]], false))
  if (leafMutated('policy constraints')) extensions.push(ext.policyConstraints(0, false))
  if (leafMutated('EKU serverAuth')) extensions = replace(extensions, ext.extendedKeyUsage([SERVER_AUTH]))
  if (leafMutated('EKU any')) extensions = replace(extensions, ext.extendedKeyUsage(['2.5.29.37.0']))
  if (leafMutated('EKU both')) extensions = replace(extensions, ext.extendedKeyUsage([SERVER_AUTH, CLIENT_AUTH]))
  if (leafMutated('no EKU')) extensions = without(extensions, '2.5.29.37')
  if (leafMutated('KU keyEncipherment')) extensions = replace(extensions, ext.keyUsage(KU.keyEncipherment))
  if (leafMutated('KU keyCertSign')) extensions = replace(extensions, ext.keyUsage(KU.digitalSignature | KU.keyCertSign))
  if (leafMutated('no KU')) extensions = without(extensions, '2.5.29.15')
  if (leafMutated('no basic constraints')) extensions = without(extensions, '2.5.29.19')
  if (leafMutated('CA:TRUE')) extensions = replace(extensions, ext.basicConstraints(true))
  if (leafMutated('path length')) extensions = replace(extensions, ext.basicConstraints(false, { pathLength: 1 }))
  if (leafMutated('empty SAN')) extensions = replace(extensions, ext.subjectAltName({}))
  if (leafMutated('no SAN')) extensions = without(extensions, '2.5.29.17')
  if (leafMutated('DNS SAN')) extensions = replace(extensions, ext.subjectAltName({ dnsNames: [`case-${id}.example.org`] }))
  if (leafMutated('empty subject, critical SAN')) extensions = replace(extensions, ext.subjectAltName({ uris: [`spiffe://mycompany.com/production/case-${id}`] }, true))
  if (spec.distributionPoint !== 'none') extensions.push(ext.crlDistributionPoints([{ uris: [`http://crl.test/${id}/${spec.distributionPoint}.crl`] }]))
  const rawExtensions = leafMutated('two basic constraints') ? [sequence(oid('2.5.29.19'), tlv(0x01, Buffer.from([0xff])), tlv(0x04, sequence(tlv(0x01, Buffer.from([0xff])))))] : []
  const serial = Buffer.concat([Buffer.from([0x11]), Buffer.from(id.replace(/\D/g, '').padStart(8, '0').slice(-8), 'hex')])
  const times = validity(leafMutated, now)
  const leafSigner: Authority = leafMutated('signed by another key') ? { ...intermediate, key: pool.take(spec.caKey) } : intermediate
  const leaf = issueLeaf(leafSigner, {
    key,
    subject: leafMutated('empty subject') || leafMutated('empty subject, critical SAN')
      ? sequence()
      : leafMutated('subject in another string type')
        ? sequence(tlv(0x31, sequence(oid('2.5.4.3'), tlv(0x13, Buffer.from(`case ${id}`)))))
        : name(['CN', `case ${id}`]),
    ...(leafMutated('serial with a leading zero') ? { serialRaw: tlv(0x02, Buffer.concat([Buffer.from([0]), serial])) } : { serial }),
    ...times,
    ...(leafMutated('time without seconds') ? { notAfterRaw: timeText('3001010000Z') } : {}),
    ...(leafMutated('version 1') ? { version: null } : {}),
    algorithm: algorithmFor(intermediate.key, spec.leafAlgorithm, spec.algorithmPick >> 3),
    extensions,
    rawExtensions,
    tamper: tampering(leafMutated)
  })

  if (crls !== null) crls.push(...crlsFor(spec.crl, intermediate, serial, id, now))
  return { name: `case ${id}`, leaf, key, intermediates: caMutated('not presented') ? [] : [intermediate.certificate] }
}

// The intermediate's CRLs for a mode: complete, sharded by distribution point, or broken one way or another.
function crlsFor (mode: typeof CRL_MODES[number], issuer: Authority, serial: Buffer, id: string, now: number): Buffer[] {
  const scope = (shard: string): Extension => ext.issuingDistributionPoint({ uris: [`http://crl.test/${id}/${shard}.crl`] })
  const at = (hoursAgo: number): Date => new Date(now - hoursAgo * HOUR)
  const revoked = [{ serial }]
  switch (mode) {
    case 'complete': return [forgeCrl({ issuer })]
    case 'shards': return [forgeCrl({ issuer, thisUpdate: at(2), extraExtensions: [scope('a')] }), forgeCrl({ issuer, thisUpdate: at(1), extraExtensions: [scope('b')] })]
    case 'revoked': return [forgeCrl({ issuer, revoked })]
    case 'revoked in its shard, other shard newer': return [forgeCrl({ issuer, thisUpdate: at(2), revoked, extraExtensions: [scope('a')] }), forgeCrl({ issuer, thisUpdate: at(1), extraExtensions: [scope('b')] })]
    case 'older CRL lists it': return [forgeCrl({ issuer, thisUpdate: at(3), revoked }), forgeCrl({ issuer })]
    case 'unknown critical': return [forgeCrl({ issuer, extraExtensions: [ext.unknown(true)] })]
    case 'critical entry extension': return [forgeCrl({ issuer, revoked: [{ serial: Buffer.from([0x7f]), extensions: [ext.unknown(true)] }] })]
    case 'expired': return [forgeCrl({ issuer, thisUpdate: at(48), nextUpdate: at(24) })]
    case 'not yet valid': return [forgeCrl({ issuer, thisUpdate: at(-24), nextUpdate: at(-48) })]
    case 'corrupt signature': return [forgeCrl({ issuer, tamper: { corruptSignature: true } })]
    case 'newer impostor': return [forgeCrl({ issuer, thisUpdate: at(2) }), forgeCrl({ issuer: { ...issuer, keyIdentifier: null }, signingKey: pool.take('p256') })]
    case 'user certificates only': return [forgeCrl({ issuer, extraExtensions: [ext.issuingDistributionPoint({ onlyUser: true })] })]
    case 'CA certificates only': return [forgeCrl({ issuer, extraExtensions: [ext.issuingDistributionPoint({ onlyCa: true })] })]
    case 'delta only': return [forgeCrl({ issuer, extraExtensions: [ext.deltaCrlIndicator(1)] })]
    case 'delta beside complete': return [forgeCrl({ issuer, thisUpdate: at(2) }), forgeCrl({ issuer, extraExtensions: [ext.deltaCrlIndicator(1)] })]
    case 'SHA-1 signed': return issuer.key.kind.startsWith('ed') ? [forgeCrl({ issuer })] : [forgeCrl({ issuer, algorithm: issuer.key.kind.startsWith('rsa') ? algorithms.rsaSha1 : algorithms.ecdsaSha1 })]
    case 'none': return []
  }
}

t.test(`property: on ${CASES} generated chains and CRLs, the verifier accepts nothing openssl verify or a TLS handshake refuses`, async t => {
  const started = Date.now()
  const tally = { cases: 0, acceptedByAll: 0, refusedByAll: 0, stricter: 0, disagreements: 0 }
  const stricterCodes = new Map<string, number>()
  const mutationsSeen = new Set<string>()
  let batch = 0
  // Two batches a run, judged together: one builds certificates while the other's servers and openssl work.
  const run = await fc.check(fc.asyncProperty(fc.tuple(batchSpec, batchSpec), async batches => {
    const built = batches.map(spec => buildBatch(spec, batch++))
    const verdicts = await judge(built.map(({ group }) => group), { server, concurrency: 8, groupConcurrency: built.length })
    const problems: string[] = []
    built.forEach(({ group, specs }, batchIndex) => (verdicts[batchIndex] as Verdicts[]).forEach((verdict, index) => {
      const testCase = group.cases[index] as DifferentialCase
      const caseSpec = specs[index] as CaseSpec
      for (const mutation of [...caseSpec.leafMutations.map(m => `leaf: ${m}`), ...caseSpec.caMutations.map(m => `CA: ${m}`), `CRL: ${caseSpec.crl}`]) mutationsSeen.add(mutation)
      tally.cases++
      const openSslAccepts = verdict.openssl === null && verdict.handshake === null
      if (verdict.verifier === null && openSslAccepts) tally.acceptedByAll++
      else if (verdict.verifier !== null && !openSslAccepts) tally.refusedByAll++
      else if (verdict.verifier !== null) {
        tally.stricter++
        stricterCodes.set(verdict.verifier, (stricterCodes.get(verdict.verifier) ?? 0) + 1)
        if (process.env.DIFFERENTIAL_DISCOVER === '1') t.comment(`stricter: ${verdict.verifier} ${JSON.stringify(caseSpec)} batch ${JSON.stringify({ rootKey: batches[batchIndex]?.rootKey, crls: batches[batchIndex]?.crls })}`)
      }
      const problem = disagreement(group, testCase, verdict)
      if (problem !== null) problems.push(`${problem}\nmutations: ${JSON.stringify({ ca: caseSpec.caMutations, leaf: caseSpec.leafMutations, crl: caseSpec.crl, distributionPoint: caseSpec.distributionPoint, caKey: caseSpec.caKey, leafKey: caseSpec.leafKey })}`)
    }))
    tally.disagreements += problems.length
    for (const problem of problems) t.comment(problem)
    return problems.length === 0
  }), { numRuns: Math.ceil(CASES / (2 * BATCH)), endOnFailure: true })
  // The batch itself (a hundred case descriptions) is no help to read: the PEMs of the disagreements are above.
  if (run.failed) t.fail(`a batch failed (fast-check seed ${run.seed}, path ${String(run.counterexamplePath)}): ${String((run.errorInstance as Error | undefined)?.stack ?? run.errorInstance)}`)
  const seconds = (Date.now() - started) / 1000
  t.comment(`${tally.cases} cases in ${seconds.toFixed(1)} s: ${tally.acceptedByAll} accepted by all three judges, ${tally.refusedByAll} refused by all, ${tally.stricter} refused by the verifier alone (${[...stricterCodes].map(([code, count]) => `${code} ${count}`).join(', ')})`)
  t.equal(tally.disagreements, 0, 'no case the verifier accepts is refused by OpenSSL')
  t.ok(tally.cases >= CASES, `${tally.cases} cases judged`)
  // A generator that never lets a chain through proves nothing about acceptance, nor one that never breaks one about refusal.
  t.ok(tally.acceptedByAll > tally.cases / 10, 'a good share of the cases is accepted by every judge')
  t.ok(tally.refusedByAll > tally.cases / 10, 'a good share is refused by every judge')
  const expected = [...LEAF_MUTATIONS.map(m => `leaf: ${m}`), ...CA_MUTATIONS.map(m => `CA: ${m}`), ...CRL_MODES.map(m => `CRL: ${m}`)]
  t.same(expected.filter(mutation => !mutationsSeen.has(mutation)), [], 'every mutation was tried')
})
