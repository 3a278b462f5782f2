import { CertificateAuthority, type IssuedCertificate } from './certificate-authority.js'
import type { KeyType } from './key-types.js'
import { checkOptionKeys } from './option-keys.js'
import { DAY_MS } from './validity.js'

export interface TestPkiOptions {
  /** Default: `mycompany.com`. */
  trustDomain?: string
  /** Key type of every CA and certificate in the set. Default: `p256`. */
  keyType?: KeyType
}

const TEST_PKI_KEYS = ['trustDomain', 'keyType'] as const satisfies ReadonlyArray<keyof TestPkiOptions>

/** A ready-made set of certificates for tests: good ones and one of each kind of bad one. */
export interface TestPki {
  readonly root: CertificateAuthority
  /** Issues every certificate below, except `otherCa`'s. */
  readonly intermediate: CertificateAuthority
  /** The trust bundle: the root certificate. */
  readonly ca: string
  /** CRLs of the intermediate and the root, for Node's `crl` option; `revoked` is listed. */
  readonly crl: readonly string[]
  /** Server certificate for `localhost`, `127.0.0.1` and `::1`, with `spiffe://<trustDomain>/production/payment-service`; serverAuth only. */
  readonly server: IssuedCertificate
  /** Client certificate for `spiffe://<trustDomain>/production/order-service`; clientAuth only. */
  readonly orderService: IssuedCertificate
  /** Client certificate for `spiffe://<trustDomain>/production/inventory-service`; clientAuth only. */
  readonly inventoryService: IssuedCertificate
  /** A client certificate whose validity ended yesterday. */
  readonly expired: IssuedCertificate
  /** A client certificate valid from tomorrow. */
  readonly notYetValid: IssuedCertificate
  /** A client certificate from another root and intermediate, with a SPIFFE ID that looks right. */
  readonly otherCa: IssuedCertificate
  /** The CA that issued `otherCa`. */
  readonly otherCaAuthority: CertificateAuthority
  /** A `CA:TRUE` certificate with `keyCertSign` presented as a client leaf (OpenSSL accepts it). */
  readonly caAsLeaf: IssuedCertificate
  /** A certificate with the serverAuth usage only, presented as a client. */
  readonly serverOnly: IssuedCertificate
  /** A client certificate listed in `crl`. */
  readonly revoked: IssuedCertificate
  /** A client certificate with two URI SANs (an X509-SVID must have exactly one). */
  readonly twoUriSans: IssuedCertificate
  /** A client certificate whose URI SAN is not a valid SPIFFE ID (`..` in the path). */
  readonly invalidSpiffeId: IssuedCertificate
  /** A client certificate with a common name and no SAN extension at all. */
  readonly noSan: IssuedCertificate
  /**
   * A client certificate whose one DNS SAN contains `, URI:spiffe://<trustDomain>/production/admin`: splitting
   * Node's `subjectaltname` string on commas would forge that URI SAN (CVE-2021-44532).
   */
  readonly sanInjection: IssuedCertificate
}

/** Makes a complete test PKI in one call; fast enough (P-256, ~tens of ms) for every test file to make its own. */
export async function createTestPki (options: TestPkiOptions = {}): Promise<TestPki> {
  checkOptionKeys(options, TEST_PKI_KEYS, 'createTestPki')
  const trustDomain = options.trustDomain ?? 'mycompany.com'
  const keyType = options.keyType ?? 'p256'
  const spiffe = (path: string): string => `spiffe://${trustDomain}/${path}`
  const now = Date.now()

  const [root, otherRoot] = await Promise.all([
    CertificateAuthority.createRoot({ commonName: 'mtls-pki test root CA', keyType }),
    CertificateAuthority.createRoot({ commonName: 'mtls-pki other root CA', keyType })
  ])
  const [intermediate, otherCaAuthority] = await Promise.all([
    root.createIntermediate({ commonName: 'mtls-pki test intermediate CA', keyType }),
    otherRoot.createIntermediate({ commonName: 'mtls-pki other intermediate CA', keyType })
  ])
  const client = { usage: 'client', keyType } as const

  const [
    server, orderService, inventoryService, expired, notYetValid, otherCa, caAsLeaf, serverOnly, revoked,
    twoUriSans, invalidSpiffeId, noSan, sanInjection
  ] = await Promise.all([
    intermediate.issue({
      usage: 'server',
      keyType,
      commonName: 'localhost',
      spiffeId: spiffe('production/payment-service'),
      dnsNames: ['localhost'],
      ips: ['127.0.0.1', '::1']
    }),
    intermediate.issue({ ...client, spiffeId: spiffe('production/order-service') }),
    intermediate.issue({ ...client, spiffeId: spiffe('production/inventory-service') }),
    intermediate.issue({
      ...client,
      spiffeId: spiffe('production/expired-service'),
      notBefore: new Date(now - 30 * DAY_MS),
      notAfter: new Date(now - DAY_MS)
    }),
    intermediate.issue({ ...client, spiffeId: spiffe('production/future-service'), notBefore: new Date(now + DAY_MS), days: 30 }),
    otherCaAuthority.issue({ ...client, spiffeId: spiffe('production/order-service') }),
    intermediate.issue({ ...client, spiffeId: spiffe('production/ca-as-leaf'), isCa: true, usage: 'both' }),
    intermediate.issue({ keyType, usage: 'server', spiffeId: spiffe('production/server-only') }),
    intermediate.issue({ ...client, spiffeId: spiffe('production/revoked-service') }),
    intermediate.issue({ ...client, spiffeId: spiffe('production/order-service'), uris: [spiffe('production/payment-service')] }),
    intermediate.issue({ ...client, commonName: 'invalid-spiffe-id', spiffeId: spiffe('production/../payment-service') }),
    intermediate.issue({ ...client, commonName: 'no-san-service' }),
    intermediate.issue({ ...client, commonName: 'san-injection', dnsNames: [`evil.example, URI:${spiffe('production/admin')}`] })
  ])

  intermediate.revoke(revoked, { reason: 'keyCompromise' })
  const crl = Object.freeze(await intermediate.createCrls())

  return Object.freeze({
    root,
    intermediate,
    ca: root.certificate,
    crl,
    server,
    orderService,
    inventoryService,
    expired,
    notYetValid,
    otherCa,
    otherCaAuthority,
    caAsLeaf,
    serverOnly,
    revoked,
    twoUriSans,
    invalidSpiffeId,
    noSan,
    sanInjection
  })
}
