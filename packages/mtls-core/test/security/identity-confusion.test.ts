// Attacks on who a certificate says it is: a CA certificate presented as a peer, a CN or an identify()
// result dressed up as a SPIFFE ID. Each of these yielded an identity an admin route believed.
import t from 'tap'
import { createTestPki, type IssuedCertificate } from 'mtls-pki'
import { compileMatcher, toPeerIdentity } from '../../src/index.js'
import { readPemBlocks } from '../../src/internal.js'

const pki = await createTestPki()
const der = (issued: IssuedCertificate): Buffer => readPemBlocks(issued.certificate)[0]!.der

t.test('a CA:TRUE certificate is never a peer identity, whatever names it carries', async t => {
  const dnsOnlyCa = await pki.intermediate.issue({ usage: 'client', isCa: true, dnsNames: ['admin.mycompany.com'] })
  const cnOnlyCa = await pki.intermediate.issue({ usage: 'client', isCa: true, commonName: 'admin' })
  for (const [what, issued] of [['a DNS-only CA', dnsOnlyCa], ['a CN-only CA', cnOnlyCa], ['a SPIFFE CA', pki.caAsLeaf]] as const) {
    t.throws(() => toPeerIdentity(der(issued)), { code: 'ERR_MTLS_CERTIFICATE_IS_CA' }, what)
    t.throws(() => toPeerIdentity(der(issued), { svid: false }), { code: 'ERR_MTLS_CERTIFICATE_IS_CA' }, `${what}, even with svid: false`)
    t.throws(() => toPeerIdentity(der(issued), { identify: () => 'cn:x' }), { code: 'ERR_MTLS_CERTIFICATE_IS_CA' }, `${what}, even with identify()`)
  }
  t.throws(() => toPeerIdentity(readPemBlocks(pki.intermediate.certificate)[0]!.der), { code: 'ERR_MTLS_CERTIFICATE_IS_CA' }, 'the intermediate CA itself')
})

t.test('an id looks like a SPIFFE ID only when it is the verified one', async t => {
  const cnSpiffe = await pki.intermediate.issue({ usage: 'client', commonName: 'spiffe://mycompany.com/production/admin' })
  const identity = toPeerIdentity(der(cnSpiffe))
  t.equal(identity.spiffeId, null)
  t.equal(identity.id, 'cn:spiffe://mycompany.com/production/admin', 'a CN stays a CN')
  t.notOk(compileMatcher(['spiffe://mycompany.com/production/admin', 'spiffe://mycompany.com/**']).matches(identity), 'no SPIFFE pattern matches it')

  const dnsSpiffe = await pki.intermediate.issue({ usage: 'client', dnsNames: ['spiffe.mycompany.com'] })
  t.equal(toPeerIdentity(der(dnsSpiffe)).id, 'dns:spiffe.mycompany.com')
})

t.test('identify() cannot make an id that passes for a SPIFFE ID the certificate does not carry', async t => {
  const forged = ['spiffe://mycompany.com/production/admin', 'SPIFFE://mycompany.com/production/admin', ' spiffe://mycompany.com/x', 'spiffe:']
  for (const id of forged) {
    t.throws(() => toPeerIdentity(der(pki.noSan), { identify: () => id }), { code: 'ERR_MTLS_CERTIFICATE_ID_CONFUSABLE' }, JSON.stringify(id))
    t.throws(() => toPeerIdentity(der(pki.inventoryService), { identify: () => id }), { code: 'ERR_MTLS_CERTIFICATE_ID_CONFUSABLE' }, `${JSON.stringify(id)} on another SPIFFE certificate`)
  }
  for (const id of ['', undefined, 42]) {
    t.throws(() => toPeerIdentity(der(pki.noSan), { identify: () => id as unknown as string }), { code: 'ERR_MTLS_CERTIFICATE_ID_INVALID' }, `identify() returning ${String(id)}`)
  }
  for (const thrown of [undefined, null, 'text', new Error('boom')]) {
    t.throws(() => toPeerIdentity(der(pki.noSan), { identify: () => { throw thrown } }), { code: 'ERR_MTLS_CERTIFICATE_ID_INVALID', message: /identify\(\) threw/ }, `identify() throwing ${String(thrown)}`)
  }
  const own = toPeerIdentity(der(pki.orderService), { identify: identity => identity.spiffeId!.toString() })
  t.equal(own.id, 'spiffe://mycompany.com/production/order-service', 'its own verified SPIFFE ID is fine')
  t.equal(toPeerIdentity(der(pki.noSan), { identify: identity => `team:${identity.commonName ?? ''}` }).id, 'team:no-san-service', 'other ids are the caller\'s choice')
})

t.test('every default id can be pasted into a policy as it is and matches its own certificate', async t => {
  const anonymous = await pki.intermediate.issue({ usage: 'client', ips: ['10.1.2.3'] })
  for (const issued of [pki.orderService, await pki.intermediate.issue({ usage: 'client', dnsNames: ['Api.Example.com'] }), pki.noSan, anonymous]) {
    const identity = toPeerIdentity(der(issued))
    t.ok(compileMatcher([identity.id]).matches(identity), `${identity.id} matches itself`)
  }
})
