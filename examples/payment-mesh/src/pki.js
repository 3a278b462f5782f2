// The demo's PKI, made fresh each run with mtls-pki: one CA for the mesh, its OCSP responder, one stranger.
import { createRootCa, writeCertificateFiles } from 'mtls-pki'

export const TRUST_DOMAIN = 'mycompany.com'
export const spiffe = name => `spiffe://${TRUST_DOMAIN}/production/${name}`
/** How long each answer of the demo's OCSP responder is good for (its nextUpdate): how long payment-service keeps it. */
export const OCSP_NEXT_UPDATE_MINUTES = 60

/**
 * Writes every certificate the demo needs into `dir` and returns their file names, the issuing CA and its OCSP
 * responder (the real `openssl ocsp`, on 127.0.0.1): the callers' certificates name it, so payment-service can ask it
 * whether they are revoked. Close the responder when done.
 */
export async function makeDemoPki (dir) {
  const root = await createRootCa({ commonName: 'mycompany.com root CA' })
  const ca = await root.createIntermediate({ commonName: 'mycompany.com issuing CA' })
  const stranger = await (await createRootCa({ commonName: 'stranger root CA' })).createIntermediate({ commonName: 'stranger issuing CA' })
  const responder = await ca.startOcspResponder({ nextUpdateMinutes: OCSP_NEXT_UPDATE_MINUTES })
  try {
    const issue = (authority, name, usage, extra = {}) => authority.issue({ spiffeId: spiffe(name), usage, ...extra })
    // Callers name the responder (authorityInfoAccess); servers need not, nobody asks about them here.
    const caller = name => issue(ca, name, 'client', { ocspUrl: responder.url })
    const server = name => issue(ca, name, 'server', { dnsNames: ['localhost'], ips: ['127.0.0.1'] })
    const certificates = {
      payment: await server('payment-service'),
      order: await caller('order-service'),
      // A second order-service replica: the same SPIFFE ID, a key and certificate of its own, as each pod has.
      orderReplica: await caller('order-service'),
      issuer: await server('token-issuer'),
      inventory: await caller('inventory-service'),
      stranger: await issue(stranger, 'order-service', 'client')
    }
    const names = { payment: 'payment-service', order: 'order-service', orderReplica: 'order-service-b', issuer: 'token-issuer', inventory: 'inventory-service', stranger: 'stranger' }
    const files = {}
    for (const [key, certificate] of Object.entries(certificates)) files[key] = await writeCertificateFiles(dir, names[key], certificate)
    await responder.refresh() // it answers for every certificate issued above
    return {
      ca,
      responder,
      certificates,
      files,
      rotatePayment: async () => await server('payment-service')
    }
  } catch (err) {
    await responder.close()
    throw err
  }
}
