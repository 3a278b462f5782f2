import fc from 'fast-check'
import t from 'tap'
import { createTestPki } from 'mtls-pki'
import { XfccError, parseXfcc, toPeerIdentity, type XfccElement } from '../src/index.js'
import { readPemBlocks } from '../src/internal.js'

const HASH = '468ed33be74eee6556d90c0149c1309e9ba61d6425303443c0748a02dd8de688'
const empty = { by: [], hash: null, cert: null, chain: null, subject: null, uri: [], dns: [] }

// header, then the elements it holds
const valid: Array<[string, Array<Partial<XfccElement>>]> = [
  // Envoy's documentation examples
  [`By=http://frontend.lyft.com;Hash=${HASH};Subject="/C=US/ST=CA/L=San Francisco/OU=Lyft/CN=Test Client";URI=http://testclient.lyft.com`,
    [{ by: ['http://frontend.lyft.com'], hash: HASH, subject: '/C=US/ST=CA/L=San Francisco/OU=Lyft/CN=Test Client', uri: ['http://testclient.lyft.com'] }]],
  [`By=http://frontend.lyft.com;Hash=${HASH};URI=http://testclient.lyft.com,By=http://backend.lyft.com;Hash=${HASH};URI=http://frontend.lyft.com`,
    [{ by: ['http://frontend.lyft.com'], hash: HASH, uri: ['http://testclient.lyft.com'] }, { by: ['http://backend.lyft.com'], hash: HASH, uri: ['http://frontend.lyft.com'] }]],
  [`By=http://frontend.lyft.com;Hash=${HASH};Subject="";URI=http://testclient.lyft.com;DNS=lyft.com;DNS=www.lyft.com`,
    [{ by: ['http://frontend.lyft.com'], hash: HASH, subject: '', uri: ['http://testclient.lyft.com'], dns: ['lyft.com', 'www.lyft.com'] }]],
  ['URI=spiffe://mycompany.com/production/order-service', [{ uri: ['spiffe://mycompany.com/production/order-service'] }]],
  // case-insensitive keys, repeated URI, empty URI
  ['uri=spiffe://a/b;Uri=spiffe://a/c;DNS=;URI=', [{ uri: ['spiffe://a/b', 'spiffe://a/c'] }]],
  ['BY=spiffe://mesh/proxy;by2=ignored', [{ by: ['spiffe://mesh/proxy'] }]],
  // quoting: commas, semicolons and equals signs inside quotes; escaped quotes and backslashes
  ['Subject="CN=a,O=b;c=d"', [{ subject: 'CN=a,O=b;c=d' }]],
  ['Subject="say \\"hi\\"";DNS="x\\\\y"', [{ subject: 'say "hi"', dns: ['x\\y'] }]],
  ['Subject="a,b",URI=spiffe://a/b', [{ subject: 'a,b' }, { uri: ['spiffe://a/b'] }]],
  // optional white space around separators
  ['By=a ; URI=spiffe://a/b , By=c', [{ by: ['a'], uri: ['spiffe://a/b'] }, { by: ['c'] }]],
  ['  URI=spiffe://a/b  ', [{ uri: ['spiffe://a/b'] }]],
  // Cert and Chain are URL-encoded PEM
  ['Cert="-----BEGIN%20CERTIFICATE-----%0AMIIB%0A-----END%20CERTIFICATE-----%0A"', [{ cert: '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n' }]],
  ['Chain=%41%42', [{ chain: 'AB' }]],
  [`Hash=${HASH.toUpperCase()}`, [{ hash: HASH }]],
  // an "=" inside a bare value is text, as in Envoy's own parser
  ['URI=a=b', [{ uri: ['a=b'] }]],
  // Envoy's documentation: the proxy's certificate "may contain multiple URI type Subject Alternative Names, each will
  // be a separate key-value pair". The element of its MtlsSetForwardClientCert test (By, Hash, URI, Cert, DNS in that
  // order), from a proxy whose certificate has two URI SANs:
  [`By=test://foo.com/be;By=test://foo.com/test;Hash=${HASH};URI=test://foo.com/fe;Cert="%3D%3Dabc%0Ade%3D";DNS=www.example.com`,
    [{ by: ['test://foo.com/be', 'test://foo.com/test'], hash: HASH, uri: ['test://foo.com/fe'], cert: '==abc\nde=', dns: ['www.example.com'] }]],
  // and its documentation's SPIFFE example, with a second By of the same proxy
  [`By=spiffe://example.org/ns/default/sa/default/backend;By=http://backend.example.org;Hash=${HASH};URI=spiffe://example.org/ns/default/sa/default/frontend`,
    [{ by: ['spiffe://example.org/ns/default/sa/default/backend', 'http://backend.example.org'], hash: HASH, uri: ['spiffe://example.org/ns/default/sa/default/frontend'] }]],
  // an empty By adds nothing, as an empty URI
  ['By=;URI=spiffe://a/b', [{ uri: ['spiffe://a/b'] }]]
]

const malformed: Array<[unknown, string, RegExp]> = [
  ['', 'ERR_MTLS_XFCC_EMPTY', /empty/],
  ['   ', 'ERR_MTLS_XFCC_EMPTY', /empty/],
  [undefined, 'ERR_MTLS_XFCC_SYNTAX', /must be a string/],
  [['URI=a'], 'ERR_MTLS_XFCC_SYNTAX', /must be a string/],
  ['URI', 'ERR_MTLS_XFCC_SYNTAX', /expected "=" after the key "URI"/],
  ['=value', 'ERR_MTLS_XFCC_SYNTAX', /expected a key/],
  ['URI=a;', 'ERR_MTLS_XFCC_SYNTAX', /expected a key/],
  ['URI=a,', 'ERR_MTLS_XFCC_SYNTAX', /expected a key/],
  [',URI=a', 'ERR_MTLS_XFCC_SYNTAX', /expected a key/],
  ['URI=a;;DNS=b', 'ERR_MTLS_XFCC_SYNTAX', /expected a key/],
  ['URI=a,,URI=b', 'ERR_MTLS_XFCC_SYNTAX', /expected a key/],
  ['Subject="unterminated', 'ERR_MTLS_XFCC_SYNTAX', /not closed/],
  ['Subject="ends with backslash\\', 'ERR_MTLS_XFCC_SYNTAX', /backslash ends/],
  ['Subject="a"b', 'ERR_MTLS_XFCC_SYNTAX', /expected ";" or ","/],
  ['Subject=a"b"', 'ERR_MTLS_XFCC_SYNTAX', /a quote inside an unquoted value/],
  ['"URI"=a', 'ERR_MTLS_XFCC_SYNTAX', /expected a key/],
  ['U RI=a', 'ERR_MTLS_XFCC_SYNTAX', /is not a word/],
  ['Cert=a;Cert=b', 'ERR_MTLS_XFCC_DUPLICATE_KEY', /"Cert" appears twice/],
  ['Chain=a;chain=b', 'ERR_MTLS_XFCC_DUPLICATE_KEY', /"chain" appears twice/],
  ['Subject=a;Subject=b', 'ERR_MTLS_XFCC_DUPLICATE_KEY', /"Subject" appears twice/],
  [`Hash=${HASH};Hash=${HASH}`, 'ERR_MTLS_XFCC_DUPLICATE_KEY', /"Hash" appears twice/],
  ['Hash=abc', 'ERR_MTLS_XFCC_BAD_VALUE', /64 hex digits/],
  [`Hash=${'z'.repeat(64)}`, 'ERR_MTLS_XFCC_BAD_VALUE', /hex digits/],
  ['Cert=%E0%A4%A', 'ERR_MTLS_XFCC_BAD_VALUE', /not valid URL encoding/],
  ['URI=' + 'a'.repeat(70_000), 'ERR_MTLS_XFCC_TOO_LONG', /at most 65536/]
]

t.test(`${valid.length} well-formed headers parse into whole elements`, async t => {
  for (const [header, expected] of valid) {
    const elements = parseXfcc(header)
    t.same(elements, expected.map(element => ({ ...empty, ...element })), header.slice(0, 70))
    t.ok(elements.every(element => Object.isFrozen(element) && Object.isFrozen(element.by) && Object.isFrozen(element.uri)), 'frozen')
  }
})

t.test(`${malformed.length} malformed headers throw XfccError and return nothing`, async t => {
  for (const [header, code, message] of malformed) {
    t.throws(() => parseXfcc(header), { code, message }, String(header).slice(0, 50))
  }
  t.throws(() => parseXfcc('URI=aaaa', { maxLength: 4 }), { code: 'ERR_MTLS_XFCC_TOO_LONG' })
  t.ok((() => { try { parseXfcc('') } catch (err) { return err instanceof XfccError } })())
})

t.test('a real certificate forwarded in Cert reads back as the same identity', async t => {
  const pki = await createTestPki()
  const header = `By=spiffe://mycompany.com/envoy;Hash=${pki.orderService.fingerprint256.replaceAll(':', '').toLowerCase()};Cert="${encodeURIComponent(pki.orderService.certificate)}";URI=spiffe://mycompany.com/production/order-service`
  const [element] = parseXfcc(header)
  t.equal(element?.cert, pki.orderService.certificate)
  const identity = toPeerIdentity(readPemBlocks(element!.cert!)[0]!.der, { source: 'forwarded' })
  t.equal(identity.id, 'spiffe://mycompany.com/production/order-service')
  t.equal(identity.source, 'forwarded')
})

const text = fc.string({ unit: fc.constantFrom(...'abcXYZ019 ,;="\\/:.-_%'), maxLength: 24 })
const elementArb = fc.record({
  by: fc.array(text.filter(s => s !== ''), { maxLength: 3 }),
  hash: fc.option(fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: 64, maxLength: 64 }), { nil: null }),
  cert: fc.option(text, { nil: null }),
  chain: fc.option(text, { nil: null }),
  subject: fc.option(text, { nil: null }),
  uri: fc.array(text.filter(s => s !== ''), { maxLength: 3 }),
  dns: fc.array(text.filter(s => s !== ''), { maxLength: 3 })
}).filter(e => e.by.length > 0 || e.hash !== null || e.cert !== null || e.chain !== null || e.subject !== null || e.uri.length > 0 || e.dns.length > 0)

function quote (value: string): string {
  return '"' + value.replaceAll('\\', '\\\\').replaceAll('"', '\\"') + '"'
}

function serialize (elements: XfccElement[]): string {
  return elements.map(e => [
    e.by.map(b => `By=${quote(b)}`),
    e.hash === null ? [] : [`Hash=${e.hash}`],
    e.cert === null ? [] : [`Cert=${quote(encodeURIComponent(e.cert))}`],
    e.chain === null ? [] : [`Chain=${encodeURIComponent(e.chain)}`],
    e.subject === null ? [] : [`Subject=${quote(e.subject)}`],
    e.uri.map(u => `URI=${quote(u)}`),
    e.dns.map(d => `dns=${quote(d)}`)
  ].flat().join(';')).join(',')
}

t.test('property: any header Envoy could write parses back to the same elements', async t => {
  fc.assert(fc.property(fc.array(elementArb, { minLength: 1, maxLength: 4 }), elements => {
    const parsed = parseXfcc(serialize(elements as XfccElement[]))
    return JSON.stringify(parsed) === JSON.stringify(elements)
  }), { numRuns: 2000 })
  t.pass('2000 generated headers round-tripped')
})

t.test('property: parseXfcc only ever throws XfccError', async t => {
  const anything = fc.oneof(
    fc.string(),
    fc.string({ unit: fc.constantFrom(...'URIByHashDNS=;,"\\ %ab'), maxLength: 60 }),
    fc.array(elementArb, { minLength: 1, maxLength: 3 }).chain(elements => {
      const header = serialize(elements as XfccElement[])
      return fc.nat(header.length).map(cut => header.slice(0, cut) + header.slice(cut + 1))
    }),
    fc.anything()
  )
  fc.assert(fc.property(anything, header => {
    try {
      const elements = parseXfcc(header)
      return elements.length > 0 && elements.every(e => Object.isFrozen(e))
    } catch (err) {
      return err instanceof XfccError
    }
  }), { numRuns: 5000 })
  t.pass('5000 arbitrary and damaged headers')
})
