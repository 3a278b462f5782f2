import t from 'tap'
import { createTestPki } from 'mtls-pki'
import { IdentityMatcher, MatcherError, compileMatcher, parseSpiffeId, toPeerIdentity, type MatchableIdentity } from '../src/index.js'
import { readPemBlocks } from '../src/internal.js'

const FINGERPRINT = 'AB:'.repeat(31) + 'AB'
const who = (spiffe: string | null, extra: Partial<MatchableIdentity> = {}): MatchableIdentity => ({
  spiffeId: spiffe === null ? null : parseSpiffeId(spiffe),
  dnsNames: [],
  commonName: null,
  fingerprint256: FINGERPRINT,
  ...extra
})

const order = who('spiffe://mycompany.com/production/order-service')
const deep = who('spiffe://mycompany.com/production/eu/west/payments')
const staging = who('spiffe://mycompany.com/staging/order-service')
const foreign = who('spiffe://other.org/production/order-service')
const dnsOnly = who(null, { dnsNames: ['Api.Example.com', 'api'], commonName: 'api-cn' })
const nothing = who(null)

// pattern, then who matches it (from: order, deep, staging, foreign, dnsOnly, nothing)
const table: Array<[string, MatchableIdentity[]]> = [
  ['spiffe://mycompany.com/production/order-service', [order]],
  ['spiffe://mycompany.com/production/*', [order]],
  ['spiffe://mycompany.com/*/order-service', [order, staging]],
  ['spiffe://mycompany.com/production/**', [order, deep]],
  ['spiffe://mycompany.com/**', [order, deep, staging]],
  ['spiffe://mycompany.com/**/payments', [deep]],
  ['spiffe://mycompany.com/**/order-service', [order, staging]],
  ['spiffe://mycompany.com/production/*/*/payments', [deep]],
  ['spiffe://mycompany.com/production/*/**', [order, deep]],
  ['spiffe://mycompany.com/*', []],
  ['spiffe://other.org/**', [foreign]],
  ['spiffe://mycompany.com/production/order-servic', []],
  ['spiffe://mycompany.com/production/order-service/x', []],
  ['dns:api.example.com', [dnsOnly]],
  ['dns:API.EXAMPLE.COM', [dnsOnly]],
  ['dns:*.example.com', [dnsOnly]],
  ['dns:*.com', []],
  ['dns:api', [dnsOnly]],
  ['cn:api-cn', [dnsOnly]],
  ['cn:API-CN', []],
  [`sha256:${FINGERPRINT}`, [order, deep, staging, foreign, dnsOnly, nothing]],
  [`sha256:${FINGERPRINT.replaceAll(':', '').toLowerCase()}`, [order, deep, staging, foreign, dnsOnly, nothing]],
  [`sha256:${'CD'.repeat(32)}`, []]
]
const everyone = [order, deep, staging, foreign, dnsOnly, nothing]

t.test('each pattern matches exactly the identities it should', async t => {
  for (const [pattern, expected] of table) {
    const matcher = compileMatcher([pattern])
    for (const identity of everyone) {
      const label = `${pattern} vs ${identity.spiffeId?.toString() ?? identity.dnsNames.join(',') ?? ''}`
      t.equal(matcher.matches(identity), expected.includes(identity), label)
      t.equal(matcher.lookup(identity).length > 0, expected.includes(identity), `${label} (lookup)`)
    }
  }
})

t.test('a table maps patterns to values and a lookup returns all that match', async t => {
  const roles = new IdentityMatcher<string>([
    ['spiffe://mycompany.com/production/order-service', 'payments:charge'],
    ['spiffe://mycompany.com/production/**', 'payments:read'],
    ['spiffe://mycompany.com/**', 'metrics:read'],
    ['dns:api.example.com', 'legacy'],
    ['spiffe://other.org/**', 'partner']
  ])
  t.same(roles.lookup(order).sort(), ['metrics:read', 'payments:charge', 'payments:read'])
  t.same(roles.lookup(staging), ['metrics:read'])
  t.same(roles.lookup(dnsOnly), ['legacy'])
  t.same(roles.lookup(nothing), [])
  t.equal(roles.patterns.length, 5)
  t.ok(Object.isFrozen(roles.patterns))
})

t.test('patterns match real certificate identities', async t => {
  const pki = await createTestPki()
  const identity = (pem: string) => toPeerIdentity(readPemBlocks(pem)[0]!.der)
  const matcher = compileMatcher(['spiffe://mycompany.com/production/order-service', `sha256:${pki.inventoryService.fingerprint256}`])
  t.ok(matcher.matches(identity(pki.orderService.certificate)))
  t.ok(matcher.matches(identity(pki.inventoryService.certificate)), 'pinned by fingerprint')
  t.notOk(matcher.matches(identity(pki.server.certificate)))
  t.notOk(matcher.matches(identity(pki.sanInjection.certificate)), 'the forged SAN matches nothing')
})

t.test('malformed patterns are refused at compile time, naming the pattern and the reason', async t => {
  const bad: Array<[unknown, RegExp]> = [
    ['mycompany.com/production', /expected spiffe:\/\/\.\.\., dns:\.\.\., cn:\.\.\. or sha256:/],
    ['http://mycompany.com/x', /expected spiffe/],
    ['spiffe://mycompany.com', /a trust domain alone matches no workload; use "spiffe:\/\/mycompany.com\/\*\*"/],
    ['spiffe://MyCompany.com/x', /must be lowercase/],
    ['spiffe://*/x', /found "\*"/],
    ['spiffe://mycompany.com/order-*', /"\*" and "\*\*" must be whole path segments/],
    ['spiffe://mycompany.com/a/***', /"\*" and "\*\*" must be whole path segments/],
    ['spiffe://mycompany.com/a/', /no trailing slash/],
    ['spiffe://mycompany.com/a/../b', /"\.\."/],
    ['spiffe://mycompany.com/a?b', /no query/],
    ['dns:', /not a DNS name/],
    ['dns:a..b', /not a DNS name/],
    ['dns:api.*.com', /"\*" stands only as the whole first label/],
    ['dns:*', /"\*" stands only as the whole first label/],
    ['dns:exa mple.com', /not a DNS name/],
    ['cn:', /the common name is empty/],
    ['sha256:ABCD', /32 bytes of hex/],
    [`sha256:${'G'.repeat(64)}`, /32 bytes of hex/],
    [42, /a pattern must be a string/]
  ]
  for (const [pattern, message] of bad) {
    t.throws(() => compileMatcher([pattern as string]), { code: 'ERR_MTLS_MATCHER_INVALID_PATTERN', message }, String(pattern))
  }
  t.ok((() => { try { compileMatcher(['x']) } catch (err) { return err instanceof MatcherError } })())
  t.throws(() => compileMatcher(['spiffe://mycompany.com/a', 'nope']), { message: /"nope"/ }, 'names the bad pattern among good ones')
})

t.test('a thousand patterns still answer by lookup, not by scanning', async t => {
  const patterns = Array.from({ length: 1000 }, (_, i) => `spiffe://mycompany.com/team-${i}/service-${i}`)
  patterns.push('spiffe://mycompany.com/team-999/**')
  const matcher = compileMatcher(patterns)
  t.same(matcher.lookup(who('spiffe://mycompany.com/team-500/service-500')), ['spiffe://mycompany.com/team-500/service-500'])
  t.same(matcher.lookup(who('spiffe://mycompany.com/team-999/service-999')).sort(), ['spiffe://mycompany.com/team-999/**', 'spiffe://mycompany.com/team-999/service-999'])
  t.notOk(matcher.matches(who('spiffe://mycompany.com/team-500/service-501')))
})
