// The seven forwarded-certificate vectors on which this plugin disagreed with independent judges: Envoy's own
// documentation and tests (By repeated, one per URI SAN of the proxy's certificate), RFC 8941 section 4.2.7 (a
// Byte Sequence without its padding SHOULD be accepted) as tgies/client-certificate-auth's parser tests apply it
// to RFC 9440, and that library's refusal (since 2.2.0) of text before the one PEM block. Each goes through a real
// server, from the trusted proxy's connection.
import t from 'tap'
import { createTestPki, type IssuedCertificate } from 'mtls-pki'
import { readPemBlocks } from 'mtls-core/internal'
import { PEER_ERRORS } from '../src/index.js'
import { agentFor, envoyElement, opensslPem, startServer, who } from './helpers.js'

const pki = await createTestPki()
const proxyId = 'spiffe://mycompany.com/infra/proxy'
const proxy = await pki.intermediate.issue({ usage: 'client', spiffeId: proxyId })
const trustedProxies = { identities: [proxyId] }
const der = (cert: IssuedCertificate): Buffer => readPemBlocks(cert.certificate)[0]!.der

// Certificates whose base64 ends in one and in two padding characters: the name's length moves the DER's length.
const padded: Partial<Record<1 | 2, { cert: IssuedCertificate, id: string }>> = {}
for (let n = 1; n < 40 && (padded[1] === undefined || padded[2] === undefined); n++) {
  const id = `spiffe://mycompany.com/production/${'p'.repeat(n)}`
  const cert = await pki.intermediate.issue({ usage: 'client', spiffeId: id })
  const pad = (3 - (der(cert).length % 3)) % 3
  if (pad === 1 || pad === 2) padded[pad] ??= { cert, id }
}

t.test('the seven vectors agree with Envoy, RFC 8941 and client-certificate-auth', async t => {
  const [one, two] = [padded[1], padded[2]]
  if (one === undefined || two === undefined) return t.fail('certificates with one and two padding characters were made')
  const envoy = await startServer(t, pki, { trustedProxies, forwarded: 'envoy' })
  const rfc9440 = await startServer(t, pki, { trustedProxies, forwarded: 'rfc9440' })
  const nginx = await startServer(t, pki, { trustedProxies, forwarded: 'nginx' })
  const alb = await startServer(t, pki, { trustedProxies, forwarded: 'aws-alb' })
  const viaProxy = agentFor(t, pki, proxy)
  const order = 'spiffe://mycompany.com/production/order-service'
  const identity = (id: string): object => ({ id, source: 'forwarded', error: null })
  const malformed = { id: null, source: null, error: PEER_ERRORS.ERR_MTLS_FORWARDED_HEADER_MALFORMED }
  const unpadded = (cert: IssuedCertificate): string => `:${der(cert).toString('base64').replace(/=+$/, '')}:`
  const damagedLeaf = '----BEGIN CERTIFICATE-----\nQUJD\n-----END CERT-----\n'
  const vectors: Array<[string, string, string[], object]> = [
    ['1. Envoy documentation: By once per URI SAN of the proxy', envoy.url,
      ['x-forwarded-client-cert', envoyElement([proxyId, 'http://proxy.mycompany.com'], pki.orderService, [order])], identity(order)],
    ['2. Envoy MtlsSetForwardClientCert: By, By, Hash, URI, Cert, DNS', envoy.url,
      ['x-forwarded-client-cert', `By=test://foo.com/be;By=test://foo.com/test;Hash=${pki.orderService.fingerprint256.replaceAll(':', '').toLowerCase()};URI=${order};Cert="${encodeURIComponent(opensslPem(der(pki.orderService)))}";DNS=www.example.com`], identity(order)],
    ['3. RFC 9440 without its one padding character', rfc9440.url, ['client-cert', unpadded(one.cert)], identity(one.id)],
    ['4. RFC 9440 without its two padding characters', rfc9440.url, ['client-cert', unpadded(two.cert)], identity(two.id)],
    ['5. nginx: a leaf damaged past its BEGIN line, before a good certificate', nginx.url, ['x-ssl-client-cert', encodeURIComponent(`${damagedLeaf}${pki.orderService.certificate}`)], malformed],
    ['6. AWS ALB: text before the PEM block', alb.url, ['x-amzn-mtls-clientcert', encodeURIComponent(`GARBAGE TEXT\n${pki.orderService.certificate}`)], malformed],
    ['7. Envoy: text before the PEM block of Cert', envoy.url, ['x-forwarded-client-cert', `By=${proxyId};Cert="${encodeURIComponent(`GARBAGE TEXT\n${pki.orderService.certificate}`)}"`], malformed]
  ]
  for (const [what, url, header, expected] of vectors) t.same((await who(url, viaProxy, header)).body, expected, what)
  // What the peer still accepts, this plugin too: whitespace around the one block.
  t.same((await who(nginx.url, viaProxy, ['x-ssl-client-cert', encodeURIComponent(`\n  \n${pki.orderService.certificate}\n\n`)])).body, identity(order), 'whitespace around the block')
})
