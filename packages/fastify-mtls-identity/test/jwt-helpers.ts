// JWT-SVID test material: signing keys, tokens signed here, and a test Workload API with a JwtSource on it.
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto'
import type { Teardown } from 'mtls-test-support'
import { createJWTSource, type JwtSource } from 'spiffe-workload-api'
import { TestWorkloadApi, jwksOf } from 'spiffe-workload-api/testing'

const ORDER = 'spiffe://mycompany.com/production/order-service'
const PAYMENT = 'spiffe://mycompany.com/production/payment-service'
const keyA = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey
const keyB = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey

const b64 = (value: object): string => Buffer.from(JSON.stringify(value)).toString('base64url')
/** An ES256 JWS signed here, for tokens no agent would issue (expired, another audience, another trust domain). */
function signJwt (key: KeyObject, claims: Record<string, unknown>, kid = 'a'): string {
  const input = `${b64({ alg: 'ES256', kid, typ: 'JWT' })}.${b64(claims)}`
  return `${input}.${sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`
}
const now = (): number => Math.floor(Date.now() / 1000)
const claims = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({ sub: ORDER, aud: PAYMENT, iat: now(), exp: now() + 300, ...extra })

async function workloadApi (t: Teardown): Promise<{ api: TestWorkloadApi, source: JwtSource }> {
  const api = await TestWorkloadApi.start()
  api.setJwtBundles({ 'mycompany.com': jwksOf([{ key: keyA, kid: 'a' }, { key: keyB, kid: 'b' }]) })
  api.setJwtSvids([{ spiffeId: ORDER, key: keyA, kid: 'a' }])
  const source = await createJWTSource({ endpoint: api.endpoint })
  t.teardown(async () => { source.close(); await api.close() })
  return { api, source }
}

export const jwtTestKeys = { keyA, keyB, signJwt, claims, now }
export { workloadApi }
