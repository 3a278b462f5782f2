// Trust kept by SPIFFE trust domain (`trustDomains`): reading and refusing the option, validating our own SVID
// against our own trust domain's bundle only, and ChainVerifier holding a peer's chain to its own trust domain.
import t from 'tap'
import { createRootCa, createTestPki, type IssuedCertificate } from 'mtls-pki'
import { ChainVerifier, MaterialError, VerificationError, loadMaterial, readMaterial, type MaterialInput } from '../src/index.js'
import { Trust, readPemBlocks, verdictCategory } from '../src/internal.js'

const [pki, partner] = await Promise.all([createTestPki(), createTestPki({ trustDomain: 'partner.example' })])
const der = (issued: IssuedCertificate | string): Buffer => readPemBlocks(typeof issued === 'string' ? issued : issued.certificate)[0]!.der
const own = { cert: pki.server.chain, key: pki.server.key }
const federated = { 'mycompany.com': pki.ca, 'partner.example': partner.ca }
// A verdict as { code, message }, or null when the certificate verifies.
const verdict = (verifier: ChainVerifier, issued: IssuedCertificate): { code: string, message: string } | null => {
  try {
    verifier.verify(der(issued), { purpose: 'client', intermediates: [der(pki.intermediate.certificate), der(partner.intermediate.certificate)] })
    return null
  } catch (err) {
    if (!(err instanceof VerificationError)) throw err
    return { code: err.code, message: err.message }
  }
}

t.test('readMaterial: trustDomains refused with OPTION_INVALID (or the size limit), each naming the problem', async t => {
  const big = pki.ca.repeat(Math.ceil((Math.max(own.cert.length, own.key.length) + 2) / pki.ca.length) + 1)
  const maxFileBytes = Math.max(own.cert.length, own.key.length) + 1
  const cases: Array<[string, Record<string, unknown>, string, RegExp]> = [
    ['ca and trustDomains', { ...own, ca: pki.ca, trustDomains: federated }, 'ERR_MTLS_MATERIAL_OPTION_INVALID', /give trustDomains or caFile\/ca, not both/],
    ['caFile and trustDomains', { ...own, caFile: '/nonexistent/ca.pem', trustDomains: federated }, 'ERR_MTLS_MATERIAL_OPTION_INVALID', /give trustDomains or caFile\/ca, not both/],
    ['an array for trustDomains', { ...own, trustDomains: [pki.ca] }, 'ERR_MTLS_MATERIAL_OPTION_INVALID', /trustDomains must be an object of PEM CA certificates by trust domain name/],
    ['null for trustDomains', { ...own, trustDomains: null }, 'ERR_MTLS_MATERIAL_OPTION_INVALID', /trustDomains must be an object/],
    ['a string for trustDomains', { ...own, trustDomains: pki.ca }, 'ERR_MTLS_MATERIAL_OPTION_INVALID', /trustDomains must be an object/],
    ['a SPIFFE ID as the name', { ...own, trustDomains: { 'spiffe://mycompany.com': pki.ca } }, 'ERR_MTLS_MATERIAL_OPTION_INVALID', /trustDomains: write "spiffe:\/\/mycompany\.com" as "mycompany\.com", as SPIFFE IDs name it/],
    ['an uppercase name', { ...own, trustDomains: { 'MyCompany.com': pki.ca } }, 'ERR_MTLS_MATERIAL_OPTION_INVALID', /trustDomains: "MyCompany\.com" is not a SPIFFE trust domain name \(.*must be lowercase\)/],
    ['a name with a path', { ...own, trustDomains: { 'spiffe://mycompany.com/ns': pki.ca } }, 'ERR_MTLS_MATERIAL_OPTION_INVALID', /"spiffe:\/\/mycompany\.com\/ns" is not a SPIFFE trust domain name \(.*has no path\)/],
    ['an empty name', { ...own, trustDomains: { '': pki.ca } }, 'ERR_MTLS_MATERIAL_OPTION_INVALID', /trustDomains: "" is not a SPIFFE trust domain name/],
    ['a number as a bundle', { ...own, trustDomains: { 'mycompany.com': 42 } }, 'ERR_MTLS_MATERIAL_OPTION_INVALID', /trustDomains\["mycompany\.com"\] must be PEM text \(strings or Buffers\)/],
    ['an object in a bundle list', { ...own, trustDomains: { 'mycompany.com': [pki.ca, { pem: partner.ca }] } }, 'ERR_MTLS_MATERIAL_OPTION_INVALID', /trustDomains\["mycompany\.com"\] must be PEM text/],
    ['no CA in any bundle', { ...own, trustDomains: { 'mycompany.com': [], 'partner.example': [] } }, 'ERR_MTLS_MATERIAL_OPTION_INVALID', /trustDomains holds no CA certificate: no peer could be trusted/],
    ['no trust domain at all', { ...own, trustDomains: {} }, 'ERR_MTLS_MATERIAL_OPTION_INVALID', /trustDomains holds no CA certificate/],
    ['a bundle over maxFileBytes', { ...own, maxFileBytes, trustDomains: { 'mycompany.com': pki.ca, 'partner.example': [partner.ca, big] } }, 'ERR_MTLS_MATERIAL_FILE_TOO_LARGE', new RegExp(`^trust bundle of partner\\.example \\[1\\]: ${big.length} bytes, ${maxFileBytes} bytes is the limit \\(maxFileBytes\\)`)],
    ['a Buffer bundle over maxFileBytes', { ...own, maxFileBytes, trustDomains: { 'mycompany.com': Buffer.from(big) } }, 'ERR_MTLS_MATERIAL_FILE_TOO_LARGE', /^trust bundle of mycompany\.com: \d+ bytes, \d+ bytes is the limit/]
  ]
  for (const [what, input, code, message] of cases) {
    const err = await readMaterial(input as MaterialInput).then(() => null, (e: unknown) => e)
    t.ok(err instanceof MaterialError, `${what}: a MaterialError`)
    t.match(err, { code, message }, what)
    // loadMaterial refuses it the same way.
    await t.rejects(loadMaterial(input as MaterialInput, { side: 'server' }), { code, message }, `${what}: loadMaterial`)
  }
  // Right at the limit, a bundle is read.
  await t.resolves(readMaterial({ ...own, maxFileBytes, trustDomains: { 'mycompany.com': pki.ca } }))
})

t.test('readMaterial: bundles by trust domain, and a digest that covers which domain holds which bundle', async t => {
  const pems = await readMaterial({ ...own, trustDomains: { 'mycompany.com': pki.ca, 'partner.example': [partner.ca, Buffer.from(pki.ca)], 'empty.example': [] } })
  t.same([...pems.trustDomains!.keys()], ['empty.example', 'mycompany.com', 'partner.example'], 'by name')
  t.same(pems.trustDomains!.get('mycompany.com')!.map(item => [item.source, item.text, item.file]), [['trust bundle of mycompany.com', pki.ca, undefined]])
  t.same(pems.trustDomains!.get('partner.example')!.map(item => [item.source, item.text]), [['trust bundle of partner.example [0]', partner.ca], ['trust bundle of partner.example [1]', pki.ca]], 'a Buffer is read as text')
  t.same(pems.trustDomains!.get('empty.example'), [], 'an empty list is kept: that trust domain trusts nothing')
  t.same(pems.ca.map(item => item.source), ['trust bundle of mycompany.com', 'trust bundle of partner.example [0]', 'trust bundle of partner.example [1]'], 'ca holds every bundle, in order')
  t.equal((await readMaterial({ ...own, ca: pki.ca })).trustDomains, null, 'with ca, no trust domains')

  const digest = async (trustDomains: Record<string, string | string[]>): Promise<string> => (await readMaterial({ ...own, trustDomains })).digest
  const base = await digest(federated)
  t.equal(await digest({ ...federated }), base, 'the same bundles under the same names: the same digest')
  const others = {
    swapped: await digest({ 'mycompany.com': partner.ca, 'partner.example': pki.ca }),
    renamed: await digest({ 'mycompany.com': pki.ca, 'other.example': partner.ca }),
    moved: await digest({ 'mycompany.com': [pki.ca, partner.ca], 'partner.example': [] }),
    movedBack: await digest({ 'mycompany.com': [], 'partner.example': [pki.ca, partner.ca] }),
    asCa: (await readMaterial({ ...own, ca: [pki.ca, partner.ca] })).digest
  }
  for (const [what, value] of Object.entries(others)) t.not(value, base, `${what}: another digest`)
  t.equal(new Set(Object.values(others)).size, Object.keys(others).length, 'each differs from the others too')
})

t.test('loadMaterial: Material.trustDomains as PEM lists by trust domain, or null', async t => {
  const extra = await createRootCa({ commonName: 'partner second root' })
  const material = await loadMaterial({ ...own, trustDomains: { 'partner.example': [partner.ca, extra.certificate], 'mycompany.com': pki.ca, 'empty.example': [] } }, { side: 'server' })
  t.ok(material.trustDomains instanceof Map)
  t.same([...material.trustDomains!.keys()], ['empty.example', 'mycompany.com', 'partner.example'], 'by name')
  const fingerprints = (pems: readonly string[] | undefined): string[] => (pems ?? []).map(pem => readPemBlocks(pem)[0]!.der.toString('base64'))
  t.same(fingerprints(material.trustDomains!.get('partner.example')), [der(partner.ca), der(extra.certificate)].map(d => d.toString('base64')))
  t.same(fingerprints(material.trustDomains!.get('mycompany.com')), [der(pki.ca).toString('base64')])
  t.match(material.trustDomains!.get('mycompany.com')![0], /^-----BEGIN CERTIFICATE-----\n/, 'PEM')
  t.same(material.trustDomains!.get('empty.example'), [])
  t.ok(Object.isFrozen(material.trustDomains!.get('partner.example')), 'each list is frozen')
  t.equal(material.ca.length, 3, 'ca holds every bundle\'s certificates')
  t.equal(material.authorities.length, 3)
  t.equal((await loadMaterial({ ...own, ca: pki.ca }, { side: 'server' })).trustDomains, null)
  // A bundle that is text but no certificate is refused where the CA certificates are read.
  await t.rejects(loadMaterial({ ...own, trustDomains: { 'mycompany.com': pki.ca, 'partner.example': 'hello' } }, { side: 'server' }), { code: 'ERR_MTLS_MATERIAL_CA_EMPTY', message: /^trust bundle of partner\.example: no CA certificate/ })
})

t.test('validateMaterial: our own SVID must chain to our own trust domain\'s bundle', async t => {
  const ok = await loadMaterial({ ...own, trustDomains: { 'partner.example': partner.ca, 'mycompany.com': pki.ca } }, { side: 'server' })
  t.equal(ok.leaf.fingerprint256, pki.server.fingerprint256)

  const swapped = { ...own, trustDomains: { 'mycompany.com': partner.ca, 'partner.example': pki.ca } }
  const err = await loadMaterial(swapped, { side: 'server' }).then(() => null, (e: unknown) => e)
  t.ok(err instanceof MaterialError)
  t.match(err, { code: 'ERR_MTLS_MATERIAL_UNTRUSTED_CHAIN', message: /^cert option: the chain does not lead to a CA of its own trust domain mycompany\.com/ }, 'another domain\'s bundle verifying it is not enough')
  // The same trust as one pool (ca) accepts it: the trust domain is what refuses it.
  await t.resolves(loadMaterial({ ...own, ca: [partner.ca, pki.ca] }, { side: 'server' }))

  const noId = await pki.intermediate.issue({ dnsNames: ['x'] })
  const cases: Array<[string, MaterialInput, 'server' | 'client', RegExp]> = [
    ['a leaf without a SPIFFE ID', { cert: noId.chain, key: noId.key, trustDomains: federated }, 'server', /^cert option: the trust is kept by SPIFFE trust domain, and the certificate is not an X\.509-SVID: it has 0 SPIFFE IDs; an X\.509-SVID has one/],
    ['a leaf with two SPIFFE IDs', { cert: pki.twoUriSans.chain, key: pki.twoUriSans.key, trustDomains: federated }, 'client', /not an X\.509-SVID: it has 2 SPIFFE IDs/],
    ['a leaf with an invalid SPIFFE ID', { cert: pki.invalidSpiffeId.chain, key: pki.invalidSpiffeId.key, trustDomains: federated }, 'client', /not an X\.509-SVID: .*"\." or "\.\." segments/],
    ['no bundle for our trust domain', { ...own, trustDomains: { 'partner.example': [partner.ca, pki.ca] } }, 'server', /^cert option: no trust bundle for its own trust domain mycompany\.com \(bundles: partner\.example\)/],
    ['an empty bundle for our trust domain', { ...own, trustDomains: { 'mycompany.com': [], 'partner.example': [partner.ca, pki.ca] } }, 'server', /no trust bundle for its own trust domain mycompany\.com \(bundles: mycompany\.com, partner\.example\)/]
  ]
  for (const [what, input, side, message] of cases) {
    await t.rejects(loadMaterial(input, { side }), { code: 'ERR_MTLS_MATERIAL_UNTRUSTED_CHAIN', message }, what)
    const skipped = await loadMaterial(input, { side, verifyOwnChain: false })
    t.ok(skipped.trustDomains instanceof Map, `${what}: verifyOwnChain: false skips the check`)
  }
  const skipped = await loadMaterial(swapped, { side: 'server', verifyOwnChain: false })
  t.same([...skipped.trustDomains!.keys()], ['mycompany.com', 'partner.example'], 'verifyOwnChain: false skips it for a swapped trust too')
  // Without trustDomains, a leaf without SPIFFE ID is fine.
  await t.resolves(loadMaterial({ cert: noId.chain, key: noId.key, ca: pki.ca }, { side: 'server' }))
})

t.test('ChainVerifier with trustDomains: a chain must end in the bundle of its leaf\'s own trust domain', async t => {
  const verifier = new ChainVerifier({ trustDomains: new Map(Object.entries(federated)) })
  const pooled = new ChainVerifier({ ca: [pki.ca, partner.ca] })
  const forged = await partner.intermediate.issue({ usage: 'client', spiffeId: 'spiffe://mycompany.com/production/order-service' })
  t.equal(verdict(pooled, forged), null, 'one pool of CAs lets a partner issue our IDs')
  t.match(verdict(verifier, forged), { code: 'ERR_MTLS_TRUST_DOMAIN_UNTRUSTED', message: /"order-service" claims the trust domain mycompany\.com, but its chain ends at "mtls-pki test root CA", a root of partner\.example$/ })
  t.equal(verdict(verifier, partner.orderService), null, 'a partner SVID from the partner CA')
  t.equal(verdict(verifier, pki.orderService), null, 'our SVID from our CA')
  const usurper = await pki.intermediate.issue({ usage: 'client', spiffeId: 'spiffe://partner.example/production/order-service' })
  t.match(verdict(verifier, usurper), { code: 'ERR_MTLS_TRUST_DOMAIN_UNTRUSTED', message: /claims the trust domain partner\.example, but its chain ends at .*a root of mycompany\.com$/ }, 'nor we theirs')

  const stranger = await pki.intermediate.issue({ usage: 'client', spiffeId: 'spiffe://unknown.example/x' })
  t.match(verdict(verifier, stranger), { code: 'ERR_MTLS_TRUST_DOMAIN_UNTRUSTED', message: /^no trust bundle for the trust domain unknown\.example$/ })
  t.match(verdict(verifier, pki.twoUriSans), { code: 'ERR_MTLS_TRUST_DOMAIN_UNTRUSTED', message: /the certificate has 2 SPIFFE IDs: an X\.509-SVID has one/ })
  t.match(verdict(verifier, pki.noSan), { code: 'ERR_MTLS_TRUST_DOMAIN_UNTRUSTED', message: /the certificate has 0 SPIFFE IDs/ })
  t.match(verdict(verifier, pki.invalidSpiffeId), { code: 'ERR_MTLS_TRUST_DOMAIN_UNTRUSTED', message: /^the certificate's SPIFFE ID is invalid \(/ })
  t.equal(verdict(pooled, pki.noSan), null, 'without trustDomains, no SPIFFE ID is needed')
  // Chain faults still come first: a root nobody trusts.
  t.match(verdict(verifier, pki.otherCa), { code: 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY' })

  // A trust domain whose bundle is empty trusts nothing, though it is known.
  const emptyPartner = new ChainVerifier({ trustDomains: new Map<string, string | string[]>([['mycompany.com', pki.ca], ['partner.example', []]]) })
  t.same([...emptyPartner.trustDomains!], ['mycompany.com', 'partner.example'])
  t.match(verdict(emptyPartner, usurper), { code: 'ERR_MTLS_TRUST_DOMAIN_UNTRUSTED', message: /a root of mycompany\.com$/ })
  t.equal(verdict(emptyPartner, pki.orderService), null)

  // A root in two bundles counts for both.
  const shared = new ChainVerifier({ trustDomains: new Map([['mycompany.com', pki.ca], ['partner.example', pki.ca]]) })
  t.equal(verdict(shared, usurper), null, 'a partner ID under a root both bundles hold')
  t.equal(verdict(shared, pki.orderService), null)
})

t.test('ChainVerifier: peerTrustDomain and trustDomains', async t => {
  const map = (entries: Array<[string, string | string[]]>): Map<string, string | string[]> => new Map(entries)
  const verifier = new ChainVerifier({ trustDomains: map([['mycompany.com', pki.ca], ['partner.example', partner.ca]]), intermediates: [pki.intermediate.certificate, partner.intermediate.certificate] })
  t.equal(verifier.peerTrustDomain({ uris: ['spiffe://partner.example/a/b'] }), 'partner.example')
  t.equal(verifier.peerTrustDomain({ uris: ['https://example.com/x', 'spiffe://mycompany.com/a'] }), 'mycompany.com', 'other URIs do not count')
  t.throws(() => verifier.peerTrustDomain({ uris: ['spiffe://elsewhere.example/a'] }), { code: 'ERR_MTLS_TRUST_DOMAIN_UNTRUSTED', message: 'no trust bundle for the trust domain elsewhere.example' })
  t.throws(() => verifier.peerTrustDomain({ uris: ['SPIFFE://mycompany.com/a', 'spiffe://mycompany.com/b'] }), { code: 'ERR_MTLS_TRUST_DOMAIN_UNTRUSTED', message: /has 2 SPIFFE IDs/ }, 'the scheme in any case counts')
  t.throws(() => verifier.peerTrustDomain({ uris: [] }), VerificationError)
  t.same([...verifier.trustDomains!], ['mycompany.com', 'partner.example'])

  const plain = new ChainVerifier({ ca: pki.ca, intermediates: pki.intermediate.certificate })
  t.equal(plain.trustDomains, null)

  // The one trust domain whose bundle holds every root (mtls-core's Trust: a look at the SPIFFE ID then does).
  t.equal(new Trust({ trustDomains: map([['mycompany.com', pki.ca]]) }).soleTrustDomain, 'mycompany.com')
  t.equal(new Trust({ trustDomains: map([['mycompany.com', pki.ca], ['partner.example', partner.ca]]) }).soleTrustDomain, null, 'two trust domains, each with its own root')
  t.equal(new Trust({ trustDomains: map([['mycompany.com', pki.ca], ['partner.example', []]]) }).soleTrustDomain, 'mycompany.com', 'an empty bundle holds no root')
  t.equal(new Trust({ trustDomains: map([['mycompany.com', pki.ca], ['partner.example', pki.ca]]) }).soleTrustDomain, 'mycompany.com', 'the same root in two bundles: either is sole; the first')
  t.equal(new Trust({ trustDomains: map([['partner.example', pki.ca], ['mycompany.com', pki.ca]]) }).soleTrustDomain, 'partner.example')
  t.equal(new Trust({ trustDomains: map([['mycompany.com', [pki.ca, partner.ca]], ['partner.example', partner.ca]]) }).soleTrustDomain, 'mycompany.com', 'a shared root counts for both: mycompany.com holds every root')
  t.equal(new Trust({ trustDomains: map([['partner.example', partner.ca], ['mycompany.com', [pki.ca, partner.ca]]]) }).soleTrustDomain, 'mycompany.com', 'whatever the order')
  t.equal(new Trust({ ca: pki.ca }).soleTrustDomain, null)

  t.throws(() => new ChainVerifier({ ca: pki.ca, trustDomains: map([['mycompany.com', pki.ca]]) }), { code: 'ERR_MTLS_MATERIAL_OPTION_INVALID', message: 'give ca or trustDomains, not both' })
  t.throws(() => new ChainVerifier({ trustDomains: map([['mycompany.com', []]]) }), { code: 'ERR_MTLS_MATERIAL_CA_EMPTY' })
  t.throws(() => new ChainVerifier({ trustDomains: new Map() }), { code: 'ERR_MTLS_MATERIAL_CA_EMPTY' })
  t.throws(() => new ChainVerifier({ trustDomains: map([['mycompany.com', '-----BEGIN CERTIFICATE-----\nMIIBAAAA\n-----END CERTIFICATE-----\n']]) }), { code: 'ERR_MTLS_MATERIAL_CERT_MALFORMED', message: /^trust bundle of mycompany\.com: certificate 1 is malformed/ })
  t.equal(verdictCategory('ERR_MTLS_TRUST_DOMAIN_UNTRUSTED'), 'unknown_ca')
})

t.test('Trust.forMaterial: the trust domain a bundle is filed under is part of the trust', async t => {
  const base = { ca: [pki.ca, partner.ca], crl: [] as string[], cert: pki.server.chain }
  const ours = { ...base, trustDomains: new Map([['mycompany.com', [pki.ca]], ['partner.example', [partner.ca]]]) }
  const swapped = { ...base, trustDomains: new Map([['mycompany.com', [partner.ca]], ['partner.example', [pki.ca]]]) }
  // The chain above order-service's certificate as the trust holds it (the server's own intermediate issued it), held to its trust domain.
  const domainVerdict = (trust: Trust, issued: IssuedCertificate): string | null => {
    const chain = trust.chainFromTrust(der(issued))
    return chain === null ? 'no chain' : trust.trustDomainRefusal(chain)?.code ?? null
  }
  const one = Trust.forMaterial(ours)
  t.equal(Trust.forMaterial({ ...ours, trustDomains: new Map(ours.trustDomains) }), one, 'the same trust domains: the same trust')
  const other = Trust.forMaterial(swapped)
  t.not(other, one, 'bundles filed under other trust domains: another trust')
  t.same(other.changeSince(one).whole, true, 'and every chain is judged whole again')
  t.equal(domainVerdict(one, pki.orderService), null)
  t.equal(domainVerdict(other, pki.orderService), 'ERR_MTLS_TRUST_DOMAIN_UNTRUSTED', 'which judges by its own filing')
  const merged = Trust.forMaterial({ ...base, trustDomains: new Map([['mycompany.com', [pki.ca, partner.ca]], ['partner.example', []]]) })
  t.not(merged, one)
  t.not(merged, other)
  t.equal(merged.soleTrustDomain, 'mycompany.com')

  const plain = Trust.forMaterial(base)
  t.not(plain, one, 'the same CAs without trust domains: another trust')
  t.equal(plain.trustDomains, null)
  t.equal(Trust.forMaterial({ ...base, trustDomains: null }), plain, 'trustDomains: null is no trust domains')
  t.same([...one.trustDomains!], ['mycompany.com', 'partner.example'])

  // From loaded material, as the plugins call it.
  const material = await loadMaterial({ ...own, trustDomains: federated }, { side: 'server' })
  const fromMaterial = Trust.forMaterial(material)
  t.same([...fromMaterial.trustDomains!], ['mycompany.com', 'partner.example'])
  t.equal(Trust.forMaterial(material), fromMaterial, 'built once per material')
})

t.test('the own chain refused by trust domain names that domain\'s bundle alone; an empty bundle counts in the digest', async t => {
  const pki = await createTestPki()
  const partner = await createTestPki({ trustDomain: 'partner.example' })
  await t.rejects(loadMaterial({ cert: pki.server.chain, key: pki.server.key, trustDomains: { 'mycompany.com': partner.ca, 'partner.example': pki.ca } }, { side: 'server' }), {
    code: 'ERR_MTLS_MATERIAL_UNTRUSTED_CHAIN',
    message: /the chain does not lead to a CA of its own trust domain mycompany\.com \(trust bundle of mycompany\.com\) \(no CA issued /
  })
  const own = { cert: pki.server.chain, key: pki.server.key }
  const a = await readMaterial({ ...own, trustDomains: { 'mycompany.com': pki.ca } })
  const b = await readMaterial({ ...own, trustDomains: { 'mycompany.com': pki.ca, 'partner.example': [] } })
  t.not(b.digest, a.digest, 'a trust domain with an empty bundle changes the digest')
})

t.test('bundles given in another order are the same trust: same digest, same ca order', async t => {
  const pki = await createTestPki()
  const partner = await createTestPki({ trustDomain: 'partner.example' })
  const own = { cert: pki.server.chain, key: pki.server.key }
  const a = await readMaterial({ ...own, trustDomains: { 'partner.example': partner.ca, 'mycompany.com': pki.ca } })
  const b = await readMaterial({ ...own, trustDomains: { 'mycompany.com': pki.ca, 'partner.example': partner.ca } })
  t.equal(a.digest, b.digest)
  t.same(a.ca.map(item => item.source), ['trust bundle of mycompany.com', 'trust bundle of partner.example'], 'by trust domain name')
  t.same([...(a.trustDomains?.keys() ?? [])], ['mycompany.com', 'partner.example'])
})
