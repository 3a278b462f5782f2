// The demo's PKI, made fresh each run with mtls-pki: one CA for the mesh, one stranger.
import { createRootCa, writeCertificateFiles } from 'mtls-pki'

export const TRUST_DOMAIN = 'mycompany.com'
export const spiffe = name => `spiffe://${TRUST_DOMAIN}/production/${name}`

/** Writes every certificate the demo needs into `dir` and returns their file names. */
export async function makeDemoPki (dir) {
  const root = await createRootCa({ commonName: 'mycompany.com root CA' })
  const ca = await root.createIntermediate({ commonName: 'mycompany.com issuing CA' })
  const stranger = await (await createRootCa({ commonName: 'stranger root CA' })).createIntermediate({ commonName: 'stranger issuing CA' })
  const issue = (authority, name, usage, extra = {}) => authority.issue({ spiffeId: spiffe(name), usage, ...extra })
  const files = {
    payment: await writeCertificateFiles(dir, 'payment-service', await issue(ca, 'payment-service', 'server', { dnsNames: ['localhost'], ips: ['127.0.0.1'] })),
    order: await writeCertificateFiles(dir, 'order-service', await issue(ca, 'order-service', 'client')),
    issuer: await writeCertificateFiles(dir, 'token-issuer', await issue(ca, 'token-issuer', 'server', { dnsNames: ['localhost'], ips: ['127.0.0.1'] })),
    inventory: await writeCertificateFiles(dir, 'inventory-service', await issue(ca, 'inventory-service', 'client')),
    stranger: await writeCertificateFiles(dir, 'stranger', await issue(stranger, 'order-service', 'client'))
  }
  return { ca, files, rotatePayment: async () => await ca.issue({ spiffeId: spiffe('payment-service'), usage: 'server', dnsNames: ['localhost'], ips: ['127.0.0.1'] }) }
}
