// MaterialSource.fromFeed: material pushed by a feed (what spiffe-workload-api's X509Source is), validated first,
// then each `update` read, validated and applied like a file change.
import { EventEmitter } from 'node:events'
import t from 'tap'
import { createRootCa, createTestPki, type IssuedCertificate } from 'mtls-pki'
import { until } from 'mtls-test-support'
import { MaterialError, MaterialSource, createMaterialSource, type Material, type MaterialFeed, type MaterialFeedStatus, type MaterialInput } from '../src/index.js'
import { within } from './helpers.js'
import { caInputsParsed } from '../src/material-validate.js'

const [pki, partner] = await Promise.all([createTestPki(), createTestPki({ trustDomain: 'partner.example' })])
const svid = (issued: IssuedCertificate, trustDomains: MaterialInput['trustDomains'] = { 'mycompany.com': pki.ca }): MaterialInput => ({ cert: issued.chain, key: issued.key, trustDomains })

/** A feed as a Workload API client is one: material on demand, `update` when new material arrives. */
class TestFeed extends EventEmitter implements MaterialFeed {
  #input: MaterialInput
  #failure: Error | null = null
  lastError: Error | null = null
  readonly lastUpdate = new Date('2026-01-02T03:04:05Z')
  closed = false

  constructor (input: MaterialInput) {
    super()
    this.#input = input
  }

  get materialInput (): MaterialInput {
    if (this.#failure !== null) throw this.#failure
    return this.#input
  }

  /** New material arrives. */
  push (input: MaterialInput): void {
    this.#failure = null
    this.#input = input
    this.emit('update')
  }

  /** The feed has no material to give (the agent went away, the feed was closed). */
  lose (error: Error): void {
    this.#failure = error
    this.emit('update')
  }

  status (): MaterialFeedStatus {
    return { endpoint: 'unix:///run/spire/agent.sock', connected: !this.closed, lastUpdate: this.lastUpdate, reconnects: 3, lastError: this.lastError, closed: this.closed }
  }
}

const next = async (source: MaterialSource, event: 'update' | 'error'): Promise<unknown[]> => await within(new Promise(resolve => {
  const listener = (...args: unknown[]): void => { source.off(event, listener); resolve(args) }
  source.on(event as 'error', listener)
}), event)

t.test('the first material is validated: a bad feed, a feed without material, unusable material', async t => {
  const feed = new TestFeed(svid(pki.server))
  const source = await MaterialSource.fromFeed(feed, { side: 'server' })
  t.teardown(() => source.close())
  t.equal(source.feed, feed)
  t.equal(source.current.leaf.fingerprint256, pki.server.fingerprint256)
  t.same([...source.current.trustDomains!.keys()], ['mycompany.com'])
  t.same(source.current.files, [], 'no files')

  const { materialInput: _input, ...noInput } = { materialInput: null, on: () => {}, off: () => {}, status: () => ({}) }
  const shapes: Array<[string, unknown]> = [
    ['null', null],
    ['a socket address', 'unix:///run/spire/agent.sock'],
    ['an empty object', {}],
    ['no materialInput', noInput],
    ['no status', { materialInput: svid(pki.server), on: () => {}, off: () => {} }],
    ['no off', { materialInput: svid(pki.server), on: () => {}, status: () => ({}) }],
    ['no on', { materialInput: svid(pki.server), off: () => {}, status: () => ({}) }],
    ['a status that is no function', { materialInput: svid(pki.server), on: () => {}, off: () => {}, status: {} }]
  ]
  for (const [what, shape] of shapes) {
    const err = await MaterialSource.fromFeed(shape as MaterialFeed, { side: 'server' }).then(() => null, (e: unknown) => e)
    t.ok(err instanceof MaterialError, `${what}: a MaterialError`)
    t.match(err, { code: 'ERR_MTLS_MATERIAL_OPTION_INVALID', message: /x509Source must be a material feed/ }, what)
  }

  const noSvid = Object.assign(new Error('no X.509-SVID received yet'), { code: 'ERR_TEST_NO_SVID' })
  const empty = new TestFeed(svid(pki.server))
  empty.lose(noSvid)
  const err = await MaterialSource.fromFeed(empty, { side: 'server' }).then(() => null, (e: unknown) => e)
  t.equal(err, noSvid, 'the feed\'s own error')
  t.equal(empty.listenerCount('update'), 0, 'a feed refused at first is not followed')

  await t.rejects(MaterialSource.fromFeed(new TestFeed(svid(pki.expired)), { side: 'client' }), { code: 'ERR_MTLS_MATERIAL_EXPIRED' })
  await t.rejects(MaterialSource.fromFeed(new TestFeed(svid(pki.server, { 'mycompany.com': partner.ca, 'partner.example': pki.ca })), { side: 'server' }), { code: 'ERR_MTLS_MATERIAL_UNTRUSTED_CHAIN' }, 'our SVID must chain to our own trust domain')
  await t.rejects(MaterialSource.fromFeed(new TestFeed(svid(pki.server)), { side: 'client' }), { code: 'ERR_MTLS_MATERIAL_EKU_UNSUITABLE' }, 'the options are the validation\'s')
  await t.rejects(MaterialSource.fromFeed(new TestFeed({ cert: pki.server.chain, key: pki.server.key, trustDomains: { 'spiffe://mycompany.com': pki.ca } }), { side: 'server' }), { code: 'ERR_MTLS_MATERIAL_OPTION_INVALID', message: /write "spiffe:\/\/mycompany\.com" as "mycompany\.com"/ })
})

t.test('an update is read, validated, applied and committed; a bad one is refused and the material stays', async t => {
  const feed = new TestFeed(svid(pki.server))
  const source = await MaterialSource.fromFeed(feed, { side: 'server' })
  t.teardown(() => source.close())
  t.equal(feed.listenerCount('update'), 1, 'the source follows the feed')
  const applied: string[] = []
  source.on('apply', value => { applied.push(value.leaf.fingerprint256) })
  const errors: Error[] = []
  source.on('error', error => { errors.push(error) })

  const rotated = await pki.intermediate.issue({ usage: 'server', spiffeId: 'spiffe://mycompany.com/production/payment-service', dnsNames: ['localhost'] })
  const updated = next(source, 'update')
  feed.push(svid(rotated, { 'mycompany.com': pki.ca, 'partner.example': partner.ca }))
  const [value, previous] = await updated as [Material, Material]
  t.equal(value.leaf.fingerprint256, rotated.fingerprint256, 'the update listener is told of the new material')
  t.equal(previous.leaf.fingerprint256, pki.server.fingerprint256, 'and of the one it replaces')
  t.same(applied, [rotated.fingerprint256], 'the apply listener put it in service')
  t.equal(source.current, value)
  t.same([...source.current.trustDomains!.keys()], ['mycompany.com', 'partner.example'], 'the new bundles come with it')
  t.match(source.lastReload, { ok: true })

  // An expired SVID: refused, told to error listeners, nothing applied, the rotated one stays.
  const failed = next(source, 'error')
  feed.push(svid(pki.expired))
  t.match((await failed)[0], { code: 'ERR_MTLS_MATERIAL_EXPIRED' })
  t.equal(source.current.leaf.fingerprint256, rotated.fingerprint256)
  t.same(applied, [rotated.fingerprint256])
  t.match(source.lastReload, { ok: false, error: { code: 'ERR_MTLS_MATERIAL_EXPIRED' } })

  // A bundle swap that would leave our SVID outside its own trust domain: refused too.
  const untrusted = next(source, 'error')
  feed.push(svid(rotated, { 'mycompany.com': partner.ca, 'partner.example': pki.ca }))
  t.match((await untrusted)[0], { code: 'ERR_MTLS_MATERIAL_UNTRUSTED_CHAIN' })
  t.equal(source.current.leaf.fingerprint256, rotated.fingerprint256)

  // The feed loses its material: its error is told, the material stays.
  const gone = Object.assign(new Error('the Workload API went away'), { code: 'ERR_TEST_AGENT_GONE' })
  const lost = next(source, 'error')
  feed.lose(gone)
  t.equal((await lost)[0], gone)
  t.equal(source.current.leaf.fingerprint256, rotated.fingerprint256)
  t.equal(errors.length, 3)

  // And a good update after the failures is applied.
  const back = next(source, 'update')
  feed.push(svid(pki.server))
  const [, , info] = await back as [Material, Material, { failedAttempts: number }]
  t.equal(source.current.leaf.fingerprint256, pki.server.fingerprint256)
  t.equal(info.failedAttempts, 3, 'it ends three failed attempts')
  t.same(applied, [rotated.fingerprint256, pki.server.fingerprint256])
})

t.test('reload(input) is refused for a feed; reload() reads the feed again', async t => {
  const feed = new TestFeed(svid(pki.server))
  const source = await MaterialSource.fromFeed(feed, { side: 'server' })
  t.teardown(() => source.close())
  const current = source.current
  await t.rejects(source.reload({ cert: pki.server.chain, key: pki.server.key, ca: pki.ca }), { code: 'ERR_MTLS_MATERIAL_OPTION_INVALID', message: /comes from a feed \(x509Source\): it cannot be switched to files or PEM/ })
  t.equal(source.current, current, 'nothing changed')
  t.equal(await source.reload(), current, 'the same feed material: the same value')
  const rotated = await pki.intermediate.issue({ usage: 'server', spiffeId: 'spiffe://mycompany.com/production/payment-service' })
  // New material the feed has not announced: reload() reads it.
  Object.defineProperty(feed, 'materialInput', { get: () => svid(rotated), configurable: true })
  t.equal((await source.reload()).leaf.fingerprint256, rotated.fingerprint256)
})

t.test('watch() on a feed source (as the plugins call it) watches no file; the feed still drives updates', async t => {
  const feed = new TestFeed(svid(pki.server))
  const source = await MaterialSource.fromFeed(feed, { side: 'server' })
  t.teardown(() => source.close())
  const stop = source.watch({ debounceMs: 10 })
  t.teardown(stop)
  const rotated = await pki.intermediate.issue({ usage: 'server', spiffeId: 'spiffe://mycompany.com/production/payment-service' })
  const updated = next(source, 'update')
  feed.push(svid(rotated))
  await updated
  t.equal(source.current.leaf.fingerprint256, rotated.fingerprint256)
  t.same(source.current.files, [])
  stop()
  t.equal(feed.listenerCount('update'), 1, 'stopping the watch does not stop following the feed')
})

t.test('close() stops following the feed: an update after it changes nothing', async t => {
  const feed = new TestFeed(svid(pki.server))
  const source = await MaterialSource.fromFeed(feed, { side: 'server' })
  let updates = 0
  source.on('update', () => { updates++ })
  source.close()
  t.equal(feed.listenerCount('update'), 0, 'the listener is gone')
  t.doesNotThrow(() => source.close(), 'closing twice is fine')
  // A second source still following the feed: once it has taken the update, the closed one would have too.
  const witness = await MaterialSource.fromFeed(feed, { side: 'server' })
  t.teardown(() => witness.close())
  const rotated = await pki.intermediate.issue({ usage: 'server', spiffeId: 'spiffe://mycompany.com/production/payment-service' })
  feed.push(svid(rotated))
  await until(() => witness.current.leaf.fingerprint256 === rotated.fingerprint256, 'the open source to take the update')
  t.equal(updates, 0)
  t.equal(source.current.leaf.fingerprint256, pki.server.fingerprint256, 'the material stays readable, and unchanged')
  t.equal(source.feed, feed)
  t.equal(feed.closed, false, 'the feed is its creator\'s to close')
})

t.test('feedStatus(): the feed\'s status with its last error as code and message; null without a feed', async t => {
  const feed = new TestFeed(svid(pki.server))
  const source = await MaterialSource.fromFeed(feed, { side: 'server' })
  t.teardown(() => source.close())
  const base = { endpoint: 'unix:///run/spire/agent.sock', connected: true, lastUpdate: feed.lastUpdate, reconnects: 3, closed: false }
  t.strictSame(source.feedStatus(), { ...base, lastError: null })
  feed.lastError = Object.assign(new Error('connect ECONNREFUSED /run/spire/agent.sock'), { code: 'ECONNREFUSED' })
  t.strictSame(source.feedStatus(), { ...base, lastError: { code: 'ECONNREFUSED', message: 'connect ECONNREFUSED /run/spire/agent.sock' } })
  feed.lastError = new Error('stream ended')
  t.strictSame(source.feedStatus(), { ...base, lastError: { code: 'ERR', message: 'stream ended' } }, 'no code: ERR')
  feed.lastError = Object.assign(new Error('14 UNAVAILABLE: no connection'), { code: 14 })
  t.strictSame(source.feedStatus(), { ...base, lastError: { code: 'ERR', message: '14 UNAVAILABLE: no connection' } }, 'a code that is no string (gRPC\'s status number): ERR')
  feed.closed = true
  t.strictSame(source.feedStatus(), { ...base, connected: false, closed: true, lastError: { code: 'ERR', message: '14 UNAVAILABLE: no connection' } })

  const fromPem = await createMaterialSource({ cert: pki.server.chain, key: pki.server.key, ca: pki.ca }, { side: 'server', watch: false })
  t.teardown(() => fromPem.close())
  t.equal(fromPem.feed, null)
  t.equal(fromPem.feedStatus(), null)
  const byDomain = await createMaterialSource(svid(pki.server), { side: 'server', watch: false })
  t.teardown(() => byDomain.close())
  t.equal(byDomain.feedStatus(), null, 'trust by domain without a feed: no feed status either')
  t.same([...byDomain.current.trustDomains!.keys()], ['mycompany.com'])
})

t.test('an update announced while the first material is read is read once the source exists', async t => {
  const rotated = await pki.intermediate.issue({ spiffeId: 'spiffe://mycompany.com/production/payment-service', dnsNames: ['localhost'], usage: 'server' })
  const feed = new TestFeed(svid(pki.server))
  let reads = 0
  // The agent pushes a rotation just as the first read takes the material.
  Object.defineProperty(feed, 'materialInput', {
    get () {
      reads++
      if (reads === 1) queueMicrotask(() => feed.push(svid(rotated)))
      return reads === 1 ? svid(pki.server) : svid(rotated)
    }
  })
  const source = await MaterialSource.fromFeed(feed, { side: 'server' })
  t.teardown(() => source.close())
  await until(() => source.current.leaf.fingerprint256 === rotated.fingerprint256, 'the rotation pushed during the first read').catch(() => {})
  t.equal(source.current.leaf.fingerprint256, rotated.fingerprint256, 'the rotation pushed during the first read is in force')
})

t.test('a feed that throws something other than an Error, gives no material, or whose status() throws: coded errors, and a status page that still answers', async t => {
  const feed = new TestFeed(svid(pki.server))
  const source = await MaterialSource.fromFeed(feed, { side: 'server' })
  t.teardown(() => source.close())
  Object.defineProperty(feed, 'materialInput', { get () { throw 'agent gone' }, configurable: true }) // eslint-disable-line no-throw-literal
  await t.rejects(source.reload(), { code: 'ERR_MTLS_MATERIAL_OPTION_INVALID', message: 'x509Source: materialInput threw agent gone' })
  Object.defineProperty(feed, 'materialInput', { get () { return null }, configurable: true })
  await t.rejects(source.reload(), { code: 'ERR_MTLS_MATERIAL_OPTION_INVALID', message: 'x509Source: materialInput is not certificate material' })
  t.equal(source.current.leaf.fingerprint256, pki.server.fingerprint256, 'the material in force stays')
  feed.status = () => { throw new Error('broken') }
  t.match(source.feedStatus(), { connected: false, lastError: { code: 'ERR', message: /^the feed's status\(\) threw: .*broken/ } })
})

t.test('an update that only rotates the SVID reads no bundle certificate again, and still checks the new certificate and key', async t => {
  // A federated bundle of a few hundred CAs, one PEM each as a Workload API client hands them over.
  const cas = await Promise.all(Array.from({ length: 200 }, async (_, i) => (await createRootCa({ commonName: `federated CA ${i}` })).certificate))
  const bundles = { 'mycompany.com': pki.ca, 'partner.example': [partner.ca, ...cas] }
  const feed = new TestFeed(svid(pki.server, bundles))
  const source = await MaterialSource.fromFeed(feed, { side: 'server' })
  t.teardown(() => source.close())
  const before = source.current
  const rotated = await pki.intermediate.issue({ usage: 'server', spiffeId: 'spiffe://mycompany.com/production/payment-service', dnsNames: ['localhost'] })
  const updated = next(source, 'update')
  const parsed = caInputsParsed()
  // New strings with the same text, as a client builds them again from the DER it received.
  feed.push(svid(rotated, { 'mycompany.com': `${pki.ca}`, 'partner.example': [partner.ca, ...cas].map(pem => pem.slice(0)) }))
  const [after] = await updated as [Material]
  t.equal(after.leaf.fingerprint256, rotated.fingerprint256)
  t.equal(after.authorities.length, before.authorities.length)
  t.equal(caInputsParsed(), parsed, 'no CA input was read again')
  t.same(after.authorities.map(ca => ca.fingerprint256), before.authorities.map(ca => ca.fingerprint256))

  // The trust OpenSSL took before is not given to it again, but the certificate and key still are: a key that
  // OpenSSL refuses with that certificate is refused, whatever the trust.
  const failed = next(source, 'error')
  feed.push({ ...svid(rotated, bundles), key: (await pki.intermediate.issue({ usage: 'server', spiffeId: 'spiffe://mycompany.com/production/payment-service' })).key })
  t.match((await failed)[0], { code: 'ERR_MTLS_MATERIAL_KEY_MISMATCH' })
  t.equal(source.current.leaf.fingerprint256, rotated.fingerprint256)
})
