// JWT-SVIDs: the test agent's JWT methods, the client's calls, local validation (every refusal), and the JWTSource.
import { generateKeyPairSync, createHmac, type KeyObject } from 'node:crypto'
import * as grpc from '@grpc/grpc-js'
import { SignJWT } from 'jose'
import t from 'tap'
import { hangLimit, until } from 'mtls-test-support'
import { WorkloadApiClient, createJWTSource, validateJwtSvid, type JwtBundles } from '../src/index.js'
import { parseJwtBundle, toJwtBundles, toJwtSvid } from '../src/jwt-bundles.js'
import { algorithmOf, jwksOf } from '../src/testing.js'
import { TestWorkloadApi } from './workload-api-server.js'

const LIMIT = { timeout: hangLimit(60_000) }
const FAST = { initialMs: 20, maxMs: 200 }
const ORDER = 'spiffe://mycompany.com/production/order-service'
const INVENTORY = 'spiffe://mycompany.com/production/inventory-service'
const PARTNER = 'spiffe://partner.example/billing'
const AUD = 'spiffe://mycompany.com/production/payment-service'

const ec = (): KeyObject => generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey
const keyA = ec()
const keyB = ec()
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey
const partnerKey = ec()
const bundles = (): JwtBundles => toJwtBundles({
  bundles: {
    'mycompany.com': jwksOf([{ key: keyA, kid: 'a' }, { key: rsa, kid: 'r' }]),
    'spiffe://partner.example': jwksOf([{ key: partnerKey, kid: 'p' }])
  }
})

const b64 = (value: object | string): string => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url')
const now = (): number => Math.floor(Date.now() / 1000)

async function token (key: KeyObject, options: { alg?: string, kid?: string | null, sub?: string, aud?: string | string[], exp?: number | null, typ?: string } = {}): Promise<string> {
  const claims: Record<string, unknown> = { sub: options.sub ?? ORDER, aud: options.aud ?? AUD }
  if (options.exp !== null) claims.exp = options.exp ?? now() + 300
  const header: Record<string, unknown> = { alg: options.alg ?? 'ES256', typ: options.typ ?? 'JWT' }
  if (options.kid !== null) header.kid = options.kid ?? 'a'
  return await new SignJWT(claims).setProtectedHeader(header as { alg: string }).sign(key)
}

t.test('local validation accepts a good token and refuses each thing the JWT-SVID specification forbids', async t => {
  const b = bundles()
  const good = await validateJwtSvid(await token(keyA, { aud: [AUD, 'other'] }), { audience: AUD, bundles: b })
  t.equal(good.spiffeId, ORDER)
  t.same(good.claims.aud, [AUD, 'other'])
  t.ok(good.expiresAt > new Date())
  t.equal((await validateJwtSvid(await token(rsa, { alg: 'PS384', kid: 'r' }), { audience: AUD, bundles: b })).spiffeId, ORDER, 'PS384 with an RSA key')
  t.equal((await validateJwtSvid(await token(partnerKey, { kid: 'p', sub: PARTNER }), { audience: AUD, bundles: b })).spiffeId, PARTNER, 'a federated trust domain')

  const refused = async (jwt: string, code: string, what: string, audience = AUD): Promise<void> => {
    await t.rejects(validateJwtSvid(jwt, { audience, bundles: b }), { code, name: 'WorkloadApiError' }, what)
  }
  const claims = { sub: ORDER, aud: AUD, exp: now() + 300 }
  await refused(`${b64({ alg: 'none', kid: 'a' })}.${b64(claims)}.`, 'ERR_MTLS_JWT_ALGORITHM', 'alg none')
  const hsInput = `${b64({ alg: 'HS256', kid: 'a' })}.${b64(claims)}`
  // HS256 keyed with the public key's JWK text: the classic confusion attack.
  const hmac = createHmac('sha256', JSON.stringify(b.get('mycompany.com')!.jwks.keys[0])).update(hsInput).digest('base64url')
  await refused(`${hsInput}.${hmac}`, 'ERR_MTLS_JWT_ALGORITHM', 'HS256')
  await refused(await token(keyA, { kid: null }), 'ERR_MTLS_JWT_KID_MISSING', 'no kid')
  await refused(await token(keyA, { kid: 'nope' }), 'ERR_MTLS_JWT_KEY_NOT_FOUND', 'unknown kid')
  await refused(await token(keyB, { kid: 'a' }), 'ERR_MTLS_JWT_SIGNATURE', 'signed with another key under a known kid')
  await refused(await token(partnerKey, { kid: 'p' }), 'ERR_MTLS_JWT_KEY_NOT_FOUND', 'a partner key speaking for our trust domain')
  await refused(await token(keyA, { sub: 'spiffe://foreign.example/x' }), 'ERR_MTLS_JWT_TRUST_DOMAIN_UNKNOWN', 'a trust domain without a bundle')
  await refused(await token(keyA, { aud: 'someone-else' }), 'ERR_MTLS_JWT_AUDIENCE', 'wrong audience')
  await refused(await token(keyA, { exp: now() - 120 }), 'ERR_MTLS_JWT_EXPIRED', 'expired beyond the skew')
  await refused(await token(keyA, { exp: null }), 'ERR_MTLS_JWT_EXPIRED', 'no exp')
  await refused(await token(keyA, { sub: 'order-service' }), 'ERR_MTLS_JWT_SUBJECT_INVALID', 'sub not a SPIFFE ID')
  await refused(await token(keyA, { sub: 'spiffe://mycompany.com' }), 'ERR_MTLS_JWT_SUBJECT_INVALID', 'sub without a path')
  await refused(await token(keyA, { typ: 'at+jwt' }), 'ERR_MTLS_JWT_MALFORMED', 'a typ other than JWT or JOSE')
  await refused(await token(rsa, { alg: 'ES256', kid: 'r' }).catch(() => `${b64({ alg: 'ES256', kid: 'r' })}.${b64(claims)}.AAAA`), 'ERR_MTLS_JWT_SIGNATURE', 'an algorithm that does not fit the key')
  await refused('not.a.jwt', 'ERR_MTLS_JWT_MALFORMED', 'garbage')
  await refused('', 'ERR_MTLS_JWT_MALFORMED', 'empty')
  t.equal((await validateJwtSvid(await token(keyA, { exp: now() - 5 }), { audience: AUD, bundles: b })).spiffeId, ORDER, 'expired within the default 30 s skew')
})

t.test('JWT bundles: a key ID is required, only public asymmetric keys are taken, X.509 authorities are skipped', async t => {
  const jwk = JSON.parse(jwksOf([{ key: keyA, kid: 'a' }]).toString()).keys[0]
  t.equal(parseJwtBundle('td', JSON.stringify({ keys: [jwk, { ...jwk, kid: undefined, use: 'x509-svid' }] })).keys.size, 1)
  const invalid = { code: 'ERR_MTLS_WORKLOAD_INVALID_RESPONSE' }
  t.throws(() => parseJwtBundle('td', 'nope'), invalid)
  t.throws(() => parseJwtBundle('td', '{}'), invalid)
  t.throws(() => parseJwtBundle('td', '{"keys":[1]}'), invalid)
  t.throws(() => parseJwtBundle('td', JSON.stringify({ keys: [{ ...jwk, kid: undefined }] })), { message: /no key ID/ })
  t.throws(() => parseJwtBundle('td', JSON.stringify({ keys: [jwk, jwk] })), { message: /twice/ })
  t.throws(() => parseJwtBundle('td', JSON.stringify({ keys: [{ kty: 'oct', k: 'c2VjcmV0', kid: 'h' }] })), { message: /RSA or EC only/ })
  t.throws(() => parseJwtBundle('td', JSON.stringify({ keys: [{ ...keyA.export({ format: 'jwk' }), kid: 'd' }] })), { message: /private/ })
  t.throws(() => parseJwtBundle('td', JSON.stringify({ keys: [{ ...jwk, x: 'AAAA' }] })), { message: /not a valid JWK/ })
  t.throws(() => toJwtBundles({ bundles: { 'Not A Domain!': Buffer.from('{"keys":[]}') } }), invalid)
})

t.test('the test agent issues JWT-SVIDs per SPIFFE ID and hint, with the audience asked; the client fetches and the agent validates', LIMIT, async t => {
  const api = await TestWorkloadApi.start(t)
  api.setJwtSvids([{ spiffeId: ORDER, key: keyA, kid: 'a' }, { spiffeId: INVENTORY, key: rsa, kid: 'r', hint: 'external' }])
  api.setJwtBundles({ 'mycompany.com': jwksOf([{ key: keyA, kid: 'a' }, { key: rsa, kid: 'r' }]) })
  const client = new WorkloadApiClient({ endpoint: api.endpoint })
  t.teardown(() => client.close())
  const first = await client.fetchJWTSVID({ audience: AUD })
  t.equal(first.spiffeId, ORDER, 'the default')
  t.same(first.audience, [AUD])
  t.ok(first.expiresAt.getTime() > Date.now() + 200_000)
  const all = await client.fetchJWTSVIDs({ audience: [AUD, 'b'] })
  t.same(all.map(svid => [svid.spiffeId, svid.hint]), [[ORDER, ''], [INVENTORY, 'external']])
  t.same(all[1]!.audience, [AUD, 'b'])
  t.equal((await client.fetchJWTSVID({ audience: AUD, hint: 'external' })).spiffeId, INVENTORY, 'by hint')
  t.equal((await client.fetchJWTSVID({ audience: AUD, subject: INVENTORY })).spiffeId, INVENTORY, 'by subject')
  await t.rejects(client.fetchJWTSVID({ audience: AUD, hint: 'nope' }), { code: 'ERR_MTLS_WORKLOAD_SVID_NOT_FOUND' })
  await t.rejects(client.fetchJWTSVID({ audience: AUD, subject: 'spiffe://mycompany.com/nobody' }), { code: 'ERR_MTLS_WORKLOAD_DENIED', grpcCode: grpc.status.PERMISSION_DENIED })
  await t.rejects(client.fetchJWTSVID({ audience: [] }), { code: 'ERR_MTLS_WORKLOAD_INVALID_OPTION' })
  await t.rejects(client.fetchJWTSVID({ audience: AUD, subjet: ORDER } as never), { code: 'ERR_MTLS_WORKLOAD_INVALID_OPTION' })

  // Both judges agree: the agent (ValidateJWTSVID) and the local validation against the streamed bundles.
  const validated = await client.validateJWTSVID({ token: all[1]!.token, audience: 'b' })
  t.equal(validated.spiffeId, INVENTORY)
  t.same(validated.claims.aud, [AUD, 'b'])
  t.equal(typeof validated.claims.exp, 'number')
  const streamed = await client.fetchJWTBundles()
  t.equal((await validateJwtSvid(first.token, { audience: AUD, bundles: streamed })).spiffeId, ORDER)
  await t.rejects(client.validateJWTSVID({ token: first.token, audience: 'someone-else' }), { code: 'ERR_MTLS_WORKLOAD_REFUSED', message: /aud does not contain "someone-else"/ })
  await t.rejects(client.validateJWTSVID({ token: '', audience: AUD }), { code: 'ERR_MTLS_WORKLOAD_INVALID_OPTION' })

  // The security header is checked on the unary calls too.
  const Client = grpc.makeGenericClientConstructor({}, 'SpiffeWorkloadAPI')
  const bare = new Client(api.address, grpc.credentials.createInsecure())
  t.teardown(() => bare.close())
  const refusals = api.refusedWithoutHeader
  const error = await new Promise<grpc.ServiceError | null>(resolve => {
    bare.makeUnaryRequest('/SpiffeWorkloadAPI/FetchJWTSVID', () => Buffer.alloc(0), (b: Buffer) => b, {}, (err: grpc.ServiceError | null) => resolve(err))
  })
  t.equal(error?.code, grpc.status.INVALID_ARGUMENT)
  t.equal(api.refusedWithoutHeader, refusals + 1)
})

t.test('JWTSource: tokens cached and refreshed at half their lifetime; validation follows bundle rotation', LIMIT, async t => {
  const api = await TestWorkloadApi.start(t)
  // Ten seconds: the refresh at half-life comes 4 to 5 s after the fetch (iat is whole seconds), room enough for the
  // assertions before it on a busy machine.
  api.setJwtSvids([{ spiffeId: ORDER, key: keyA, kid: 'a', lifetimeSeconds: 10 }])
  api.setJwtBundles({ 'mycompany.com': jwksOf([{ key: keyA, kid: 'a' }]) })
  const source = await createJWTSource({ endpoint: api.endpoint, backoff: FAST, clockToleranceSec: 0 })
  t.teardown(() => source.close())
  const first = await source.fetchJWTSVID({ audience: AUD })
  t.equal(await source.fetchJWTSVID({ audience: AUD }), first, 'cached')
  t.equal(api.jwtIssued, 1)
  t.equal(source.cachedJWTSVID({ audience: AUD }), first)
  t.equal(source.status().tokens, 1)
  // iat is whole seconds: the half-life is 5 s after it.
  await until(() => api.jwtIssued >= 2, 'the background refresh at half the lifetime')
  const refreshedAt = Date.now()
  t.ok(refreshedAt >= first.issuedAt.getTime() + 5000 - 50, `refreshed ${refreshedAt - first.issuedAt.getTime()} ms after issue`)
  t.ok(refreshedAt < first.expiresAt.getTime(), 'before the old token expired')
  const second = await source.fetchJWTSVID({ audience: AUD })
  t.not(second.token, first.token)
  t.equal((await source.validateJWTSVID(second.token, AUD)).spiffeId, ORDER)

  // Rotation: key b joins, then key a leaves; a token signed with a is refused from then on.
  const updated = new Promise(resolve => source.once('update', resolve))
  api.setJwtBundles({ 'mycompany.com': jwksOf([{ key: keyB, kid: 'b' }]) })
  await updated
  await t.rejects(source.validateJWTSVID(second.token, AUD), { code: 'ERR_MTLS_JWT_KEY_NOT_FOUND' })
  const client = new WorkloadApiClient({ endpoint: api.endpoint })
  t.teardown(() => client.close())
  await t.rejects(client.validateJWTSVID({ token: second.token, audience: AUD }), { code: 'ERR_MTLS_WORKLOAD_REFUSED', message: /key "a" is not in the JWT bundle/ }, 'the agent refuses it too')
  t.equal((await source.validateJWTSVID(await token(keyB, { kid: 'b' }), AUD)).spiffeId, ORDER)
})

t.test('JWTSource through an agent outage: status says so, bundles and a valid token are kept, then it reconnects', LIMIT, async t => {
  const api = await TestWorkloadApi.start(t)
  api.setJwtSvids([{ spiffeId: ORDER, key: keyA, kid: 'a' }])
  api.setJwtBundles({ 'mycompany.com': jwksOf([{ key: keyA, kid: 'a' }]) })
  const source = await createJWTSource({ endpoint: api.endpoint, backoff: FAST })
  t.teardown(() => source.close())
  const errors: string[] = []
  source.on('error', error => errors.push(error.code))
  const svid = await source.fetchJWTSVID({ audience: AUD })
  t.equal(source.status().connected, true)
  api.stop()
  await until(() => !source.status().connected && errors.length >= 2, 'the disconnection and a failed reconnection')
  t.equal(source.status().lastError?.code, 'ERR_MTLS_WORKLOAD_UNAVAILABLE')
  t.equal(await source.fetchJWTSVID({ audience: AUD }), svid, 'the cached token still serves')
  t.equal((await source.validateJWTSVID(svid.token, AUD)).spiffeId, ORDER, 'the bundles in force still validate')
  await t.rejects(source.fetchJWTSVID({ audience: 'new-audience' }), { code: 'ERR_MTLS_WORKLOAD_UNAVAILABLE' }, 'a new audience needs the agent')
  const back = new Promise(resolve => source.once('update', resolve))
  await api.listen()
  await back
  const status = source.status()
  t.equal(status.connected, true)
  t.equal(status.lastError, null)
  t.ok(status.reconnects >= 1)
  t.equal(status.closed, false)
  source.close()
  t.equal(source.status().closed, true)
  t.throws(() => source.bundles, { code: 'ERR_MTLS_WORKLOAD_CLOSED' })
  await t.rejects(source.fetchJWTSVID({ audience: AUD }), { code: 'ERR_MTLS_WORKLOAD_CLOSED' })
})

t.test('createJWTSource: no bundles in time, bad options', LIMIT, async t => {
  const api = await TestWorkloadApi.start(t)
  await t.rejects(createJWTSource({ endpoint: api.endpoint, timeoutMs: 200 }), { code: 'ERR_MTLS_WORKLOAD_TIMEOUT', message: /JWT bundles/ })
  await t.rejects(createJWTSource({ endpoint: api.endpoint, clockToleranceSec: -1 }), { code: 'ERR_MTLS_WORKLOAD_INVALID_OPTION' })
  await t.rejects(createJWTSource({ endpoint: api.endpoint, audience: 'x' } as never), { code: 'ERR_MTLS_WORKLOAD_INVALID_OPTION' })
})

t.test('odd corners: claims through the agent, unusable messages, timeouts, a refresh that fails', LIMIT, async t => {
  const api = await TestWorkloadApi.start(t)
  api.setJwtBundles({ 'mycompany.com': jwksOf([{ key: keyA, kid: 'a' }]) })
  const client = new WorkloadApiClient({ endpoint: api.endpoint, backoff: FAST })
  t.teardown(() => client.close())
  const rich = await new SignJWT({ sub: ORDER, aud: AUD, exp: now() + 60, extra: { on: true, off: null, list: [1, 'x'] } })
    .setProtectedHeader({ alg: 'ES256', kid: 'a' }).sign(keyA)
  const { claims } = await client.validateJWTSVID({ token: rich, audience: AUD })
  t.same(claims.extra, { on: true, off: null, list: [1, 'x'] }, 'claims survive the Struct encoding')
  await t.rejects(validateJwtSvid(await new SignJWT({ sub: ORDER, aud: AUD, exp: now() + 60, nbf: now() + 600 }).setProtectedHeader({ alg: 'ES256', kid: 'a' }).sign(keyA),
    { audience: AUD, bundles: bundles() }), { code: 'ERR_MTLS_JWT_MALFORMED', message: /nbf/ }, 'not yet valid')
  await t.rejects(client.fetchJWTSVID({ audience: AUD, hint: '' }), { code: 'ERR_MTLS_WORKLOAD_INVALID_OPTION', message: /hint/ })
  await t.rejects(client.fetchJWTSVID({ audience: AUD }), { code: 'ERR_MTLS_WORKLOAD_DENIED' }, 'no JWT-SVID set: no identity issued')
  await t.rejects(client.fetchJWTSVID({ audience: 5 as never }), { code: 'ERR_MTLS_WORKLOAD_INVALID_OPTION', message: /audience/ })
  await t.rejects(client.fetchJWTSVID({ audience: [AUD, ''] }), { code: 'ERR_MTLS_WORKLOAD_INVALID_OPTION', message: /audience/ })
  await t.rejects(client.validateJWTSVID({ token: rich, audience: '' }), { code: 'ERR_MTLS_WORKLOAD_INVALID_OPTION', message: /audience/ })
  await t.rejects(createJWTSource({ endpoint: api.endpoint, clockToleranceSec: 'x' as never }), { code: 'ERR_MTLS_WORKLOAD_INVALID_OPTION' })
  api.setJwtSvids([{ spiffeId: ORDER, key: keyA, kid: 'a' }])
  await t.rejects(client.fetchJWTSVID({ audience: AUD, subject: ORDER, hint: 'nope' }), { code: 'ERR_MTLS_WORKLOAD_SVID_NOT_FOUND', message: new RegExp(`for ${ORDER} with hint "nope"`) })

  const invalid = { code: 'ERR_MTLS_WORKLOAD_INVALID_RESPONSE' }
  t.throws(() => toJwtSvid({ spiffeId: ORDER, svid: 'x', hint: '' }), invalid)
  const [otherSub, noExp, noAud] = await Promise.all([token(keyA, { sub: INVENTORY }), token(keyA, { exp: null }), token(keyA, { aud: [] })])
  t.throws(() => toJwtSvid({ spiffeId: ORDER, svid: otherSub, hint: '' }), { message: /not the SVID's ID/ })
  t.throws(() => toJwtSvid({ spiffeId: ORDER, svid: noExp, hint: '' }), { message: /no exp/ })
  t.throws(() => toJwtSvid({ spiffeId: ORDER, svid: noAud, hint: '' }), { message: /no aud/ })
  t.equal(algorithmOf(generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey), 'ES384')
  t.equal(algorithmOf(generateKeyPairSync('ec', { namedCurve: 'P-521' }).privateKey), 'ES512')
  t.equal(algorithmOf(generateKeyPairSync('rsa-pss', { modulusLength: 2048 }).privateKey), 'PS256')
  t.throws(() => algorithmOf(generateKeyPairSync('ed25519').privateKey), { message: /no JWT-SVID algorithm/ })

  // An agent whose own bundles are unusable fails the validation call (Internal), it does not accept.
  api.setJwtBundles({ 'mycompany.com': Buffer.from('nope') })
  await t.rejects(client.validateJWTSVID({ token: rich, audience: AUD }), { code: 'ERR_MTLS_WORKLOAD_RPC_FAILED', grpcCode: grpc.status.INTERNAL })
  const empty = await TestWorkloadApi.start(t)
  const other = new WorkloadApiClient({ endpoint: empty.endpoint })
  t.teardown(() => other.close())
  await t.rejects(other.fetchJWTBundles({ timeoutMs: 200 }), { code: 'ERR_MTLS_WORKLOAD_TIMEOUT' })
  empty.deny({ code: grpc.status.PERMISSION_DENIED, details: 'no' })
  await t.rejects(other.fetchJWTBundles(), { code: 'ERR_MTLS_WORKLOAD_DENIED' })

  // A refresh that fails keeps the token in use until it expires.
  api.setJwtBundles({ 'mycompany.com': jwksOf([{ key: keyA, kid: 'a' }]) })
  // Twelve seconds: the token is still valid when the failed refresh at half-life (6 s) has been seen.
  api.setJwtSvids([{ spiffeId: ORDER, key: keyA, kid: 'a', lifetimeSeconds: 12 }])
  const source = await createJWTSource({ endpoint: api.endpoint, backoff: FAST })
  t.teardown(() => source.close())
  const errors: string[] = []
  source.on('error', error => errors.push(error.code))
  const svid = await source.fetchJWTSVID({ audience: AUD })
  const issued = api.jwtIssued
  api.deny({ code: grpc.status.PERMISSION_DENIED, details: 'entry deleted' })
  await until(() => errors.includes('ERR_MTLS_WORKLOAD_DENIED') && api.jwtIssued === issued && Date.now() >= svid.issuedAt.getTime() + 6_000, 'the refresh at half-life to fail')
  t.equal(source.cachedJWTSVID({ audience: AUD }), svid, 'the token in use is kept while valid')
  t.equal(source.cachedJWTSVID({ audience: [AUD], subject: ORDER, hint: 'h' }), null, 'nothing cached for another subject and hint')
  await t.rejects(source.fetchJWTSVID({ audience: 'another' }), { code: 'ERR_MTLS_WORKLOAD_DENIED' }, 'a new audience while denied')
})
