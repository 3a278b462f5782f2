import fc from 'fast-check'
import t from 'tap'
import { MAX_SPIFFE_ID_LENGTH, SpiffeIdError, isSpiffeId, parseSpiffeId, parseTrustDomain } from '../src/index.js'

// From the SPIFFE-ID specification (sections 2.1 to 2.3) and go-spiffe's spiffeid tests.
const valid: Array<[string, string, string]> = [
  ['spiffe://example.org', 'example.org', ''],
  ['spiffe://example.org/workload', 'example.org', '/workload'],
  ['spiffe://mycompany.com/production/order-service', 'mycompany.com', '/production/order-service'],
  ['spiffe://staging.example.com/payments/mysql', 'staging.example.com', '/payments/mysql'],
  ['spiffe://k8s-west.example.com/ns/staging/sa/default', 'k8s-west.example.com', '/ns/staging/sa/default'],
  ['spiffe://example.com/9eebccd2-12bf-40a6-b262-65fe0487d453', 'example.com', '/9eebccd2-12bf-40a6-b262-65fe0487d453'],
  ['spiffe://trust_domain/path', 'trust_domain', '/path'],
  ['spiffe://a/B/C_d/e.f/g-h', 'a', '/B/C_d/e.f/g-h'],
  ['spiffe://1.2.3.4/ip-like-trust-domain', '1.2.3.4', '/ip-like-trust-domain'],
  ['spiffe://example.org/.../a', 'example.org', '/.../a'],
  ['spiffe://example.org/.a/..b', 'example.org', '/.a/..b'],
  ['spiffe://example.org/UPPER/Case', 'example.org', '/UPPER/Case'],
  ['spiffe://-/-', '-', '/-'],
  ['spiffe://example.org/' + 'a'.repeat(2000), 'example.org', '/' + 'a'.repeat(2000)],
  ['spiffe://' + 'd'.repeat(255) + '/x', 'd'.repeat(255), '/x']
]

const invalid: Array<[unknown, string, RegExp]> = [
  ['', 'ERR_MTLS_SPIFFE_ID_EMPTY', /cannot be empty/],
  [42, 'ERR_MTLS_SPIFFE_ID_NOT_A_STRING', /must be a string; got number/],
  [null, 'ERR_MTLS_SPIFFE_ID_NOT_A_STRING', /got object/],
  [undefined, 'ERR_MTLS_SPIFFE_ID_NOT_A_STRING', /got undefined/],
  ['example.org/workload', 'ERR_MTLS_SPIFFE_ID_WRONG_SCHEME', /scheme must be "spiffe:\/\/"/],
  ['http://example.org/workload', 'ERR_MTLS_SPIFFE_ID_WRONG_SCHEME', /scheme/],
  ['SPIFFE://example.org/workload', 'ERR_MTLS_SPIFFE_ID_WRONG_SCHEME', /must be lowercase/],
  ['Spiffe://example.org/workload', 'ERR_MTLS_SPIFFE_ID_WRONG_SCHEME', /must be lowercase/],
  ['spiffe:/example.org/workload', 'ERR_MTLS_SPIFFE_ID_WRONG_SCHEME', /scheme/],
  ['spiffe:example.org', 'ERR_MTLS_SPIFFE_ID_WRONG_SCHEME', /scheme/],
  ['spiffe://', 'ERR_MTLS_SPIFFE_ID_MISSING_TRUST_DOMAIN', /trust domain is missing/],
  ['spiffe:///workload', 'ERR_MTLS_SPIFFE_ID_MISSING_TRUST_DOMAIN', /trust domain is missing/],
  ['spiffe://Example.org/workload', 'ERR_MTLS_SPIFFE_ID_BAD_TRUST_DOMAIN', /must be lowercase/],
  ['spiffe://EXAMPLE.ORG', 'ERR_MTLS_SPIFFE_ID_BAD_TRUST_DOMAIN', /must be lowercase/],
  ['spiffe://example.org:8080/workload', 'ERR_MTLS_SPIFFE_ID_BAD_TRUST_DOMAIN', /no port/],
  ['spiffe://user@example.org/workload', 'ERR_MTLS_SPIFFE_ID_BAD_TRUST_DOMAIN', /no userinfo/],
  ['spiffe://user:pass@example.org/workload', 'ERR_MTLS_SPIFFE_ID_BAD_TRUST_DOMAIN', /no port|no userinfo/],
  ['spiffe://example.org?query', 'ERR_MTLS_SPIFFE_ID_BAD_TRUST_DOMAIN', /no query/],
  ['spiffe://example.org#fragment', 'ERR_MTLS_SPIFFE_ID_BAD_TRUST_DOMAIN', /no fragment/],
  ['spiffe://exa%41mple.org/w', 'ERR_MTLS_SPIFFE_ID_BAD_TRUST_DOMAIN', /no percent-encoding/],
  ['spiffe://exam ple.org/w', 'ERR_MTLS_SPIFFE_ID_BAD_TRUST_DOMAIN', /found " "/],
  ['spiffe://exämple.org/w', 'ERR_MTLS_SPIFFE_ID_BAD_TRUST_DOMAIN', /found "ä"/],
  ['spiffe://[::1]/w', 'ERR_MTLS_SPIFFE_ID_BAD_TRUST_DOMAIN', /found "\["/],
  ['spiffe://' + 'd'.repeat(256) + '/x', 'ERR_MTLS_SPIFFE_ID_BAD_TRUST_DOMAIN', /at most 255 bytes/],
  ['spiffe://example.org/', 'ERR_MTLS_SPIFFE_ID_BAD_PATH', /no trailing slash/],
  ['spiffe://example.org/workload/', 'ERR_MTLS_SPIFFE_ID_BAD_PATH', /no trailing slash/],
  ['spiffe://example.org//workload', 'ERR_MTLS_SPIFFE_ID_BAD_PATH', /no empty segments/],
  ['spiffe://example.org/a//b', 'ERR_MTLS_SPIFFE_ID_BAD_PATH', /no empty segments/],
  ['spiffe://example.org/.', 'ERR_MTLS_SPIFFE_ID_BAD_PATH', /no "\." or "\.\." segments/],
  ['spiffe://example.org/..', 'ERR_MTLS_SPIFFE_ID_BAD_PATH', /no "\." or "\.\." segments/],
  ['spiffe://example.org/a/./b', 'ERR_MTLS_SPIFFE_ID_BAD_PATH', /"\."/],
  ['spiffe://mycompany.com/production/../payment-service', 'ERR_MTLS_SPIFFE_ID_BAD_PATH', /"\.\."/],
  ['spiffe://example.org/path?query=1', 'ERR_MTLS_SPIFFE_ID_BAD_PATH', /no query/],
  ['spiffe://example.org/path#fragment', 'ERR_MTLS_SPIFFE_ID_BAD_PATH', /no fragment/],
  ['spiffe://example.org/pa%20th', 'ERR_MTLS_SPIFFE_ID_BAD_PATH', /no percent-encoding/],
  ['spiffe://example.org/pa th', 'ERR_MTLS_SPIFFE_ID_BAD_PATH', /found " "/],
  ['spiffe://example.org/päth', 'ERR_MTLS_SPIFFE_ID_BAD_PATH', /found "ä"/],
  ['spiffe://example.org/a:b', 'ERR_MTLS_SPIFFE_ID_BAD_PATH', /found ":"/],
  ['spiffe://example.org/a@b', 'ERR_MTLS_SPIFFE_ID_BAD_PATH', /found "@"/],
  ['spiffe://example.org/a~b', 'ERR_MTLS_SPIFFE_ID_BAD_PATH', /found "~"/],
  ['spiffe://example.org/a\\b', 'ERR_MTLS_SPIFFE_ID_BAD_PATH', /found "\\\\"/],
  ['spiffe://example.org/' + 'a'.repeat(MAX_SPIFFE_ID_LENGTH), 'ERR_MTLS_SPIFFE_ID_TOO_LONG', /at most 2048 bytes/],
  ['spiffe://example.org/' + 'é'.repeat(1020), 'ERR_MTLS_SPIFFE_ID_TOO_LONG', /at most 2048 bytes/]
]

t.test(`${valid.length} valid SPIFFE IDs parse into trust domain and path`, async t => {
  for (const [input, trustDomain, path] of valid) {
    const id = parseSpiffeId(input)
    t.equal(id.trustDomain, trustDomain, `${input.slice(0, 60)}: trust domain`)
    t.equal(id.path, path, `${input.slice(0, 60)}: path`)
    t.same(id.segments, path === '' ? [] : path.slice(1).split('/'))
    t.equal(id.toString(), input, 'toString gives the input back')
    t.equal(JSON.stringify({ id }), JSON.stringify({ id: input }), 'serialises as its string')
    t.ok(isSpiffeId(input))
    t.ok(Object.isFrozen(id) && Object.isFrozen(id.segments), 'frozen')
  }
})

t.test(`${invalid.length} invalid SPIFFE IDs are refused with the rule they break`, async t => {
  for (const [input, code, message] of invalid) {
    const label = typeof input === 'string' ? input.slice(0, 60) : String(input)
    t.throws(() => parseSpiffeId(input), { code, message }, label)
    t.notOk(isSpiffeId(input), `${label}: isSpiffeId is false`)
  }
  const err = (() => { try { parseSpiffeId('x') } catch (e) { return e } })()
  t.ok(err instanceof SpiffeIdError)
  t.equal((err as Error).name, 'SpiffeIdError')
})

t.test('trust domains parse bare or as their own SPIFFE ID', async t => {
  t.equal(parseTrustDomain('example.org'), 'example.org')
  t.equal(parseTrustDomain('spiffe://example.org'), 'example.org')
  t.throws(() => parseTrustDomain('spiffe://example.org/path'), { code: 'ERR_MTLS_SPIFFE_ID_BAD_TRUST_DOMAIN', message: /a trust domain has no path/ })
  t.throws(() => parseTrustDomain('Example.org'), { code: 'ERR_MTLS_SPIFFE_ID_BAD_TRUST_DOMAIN' })
  t.throws(() => parseTrustDomain(''), { code: 'ERR_MTLS_SPIFFE_ID_MISSING_TRUST_DOMAIN' })
  t.throws(() => parseTrustDomain(7), { code: 'ERR_MTLS_SPIFFE_ID_NOT_A_STRING' })
  t.throws(() => parseTrustDomain('http://example.org'), { code: 'ERR_MTLS_SPIFFE_ID_WRONG_SCHEME' })
})

const trustDomainChar = fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789.-_')
const segmentChar = fc.constantFrom(...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_')
const segment = fc.string({ unit: segmentChar, minLength: 1, maxLength: 20 }).filter(s => s !== '.' && s !== '..')
const spiffeId = fc.record({
  trustDomain: fc.string({ unit: trustDomainChar, minLength: 1, maxLength: 40 }),
  segments: fc.array(segment, { maxLength: 8 })
})

t.test('property: every valid SPIFFE ID round-trips', async t => {
  fc.assert(fc.property(spiffeId, ({ trustDomain, segments }) => {
    const text = `spiffe://${trustDomain}${segments.map(s => '/' + s).join('')}`
    const id = parseSpiffeId(text)
    return id.toString() === text && id.trustDomain === trustDomain && id.segments.join('/') === segments.join('/')
  }), { numRuns: 2000 })
  t.pass('2000 generated IDs round-tripped')
})

t.test('property: parseSpiffeId only ever throws SpiffeIdError', async t => {
  const anything = fc.oneof(
    fc.string(),
    fc.string({ unit: 'grapheme' }),
    fc.string().map(s => 'spiffe://' + s),
    fc.string({ unit: fc.constantFrom(...'spife:/.%?#@A-_ a1'), maxLength: 40 }),
    fc.anything()
  )
  fc.assert(fc.property(anything, input => {
    try {
      parseSpiffeId(input)
      return typeof input === 'string' && input.startsWith('spiffe://')
    } catch (err) {
      return err instanceof SpiffeIdError && typeof (err as SpiffeIdError).code === 'string'
    }
  }), { numRuns: 5000 })
  t.pass('5000 arbitrary inputs')
})
