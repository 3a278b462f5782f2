// The stand-in for the SPIRE agent the service tests run against: spiffe-workload-api's test Workload API server on
// a Unix socket, serving X.509-SVIDs from a CA of mtls-pki, and JWT-SVIDs signed with one P-256 key whose public half
// is the trust domain's JWT bundle (as a SPIRE server's JWT key).
import { generateKeyPairSync } from 'node:crypto'
import { createTestPki } from 'mtls-pki'
import { TestWorkloadApi, jwksOf, svidMessage } from 'spiffe-workload-api/testing'
import { ORDER_SERVICE_ID, PAYMENT_SERVICE_ID, TRUST_DOMAIN } from '../src/identities.js'

/**
 * A started server (closed at the end of `t`) serving both services' X.509-SVIDs and JWT-SVIDs for each of `jwtIds`
 * (and the JWT bundle, unless `jwtBundles` is false); `svids()` issues new X.509-SVIDs and returns the message that
 * pushes them (`api.setX509(message)`).
 */
export async function startTestWorkloadApi (t, { jwtIds = [PAYMENT_SERVICE_ID, ORDER_SERVICE_ID], jwtBundles = true } = {}) {
  const pki = await createTestPki()
  const api = await TestWorkloadApi.start()
  t.teardown(() => api.close())
  const svids = async () => {
    const [payment, order] = await Promise.all([
      pki.intermediate.issue({ spiffeId: PAYMENT_SERVICE_ID, usage: 'both' }),
      pki.intermediate.issue({ spiffeId: ORDER_SERVICE_ID, usage: 'both' })
    ])
    return { svids: [svidMessage(PAYMENT_SERVICE_ID, payment), svidMessage(ORDER_SERVICE_ID, order)] }
  }
  api.setX509(await svids())
  const jwtKey = { key: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey, kid: 'test-jwt-1' }
  api.setJwtSvids(jwtIds.map(spiffeId => ({ spiffeId, ...jwtKey })))
  if (jwtBundles) api.setJwtBundles({ [TRUST_DOMAIN]: jwksOf([jwtKey]) })
  return { api, pki, svids }
}
