import { expectAssignable, expectError, expectType } from 'tsd'
import {
  CertificateAuthority,
  createRootCa,
  createTestPki,
  PkiError,
  writeCertificateFiles,
  type CertificateFiles,
  type IssuedCertificate,
  type IssuedRecord,
  type KeyType,
  type OcspResponder,
  type OcspResponderOptions,
  type PkiErrorCode,
  type TestPki
} from 'mtls-pki'

const root = await createRootCa({ keyType: 'p384', days: 30 })
expectType<CertificateAuthority>(root)
expectType<CertificateAuthority | null>(root.parent)
expectType<Promise<CertificateAuthority>>(root.createIntermediate({ pathLength: 0 }))

const issued = await root.issue({ spiffeId: 'spiffe://example.org/a', usage: 'client', dnsNames: ['a'], ips: ['::1'] })
expectType<IssuedCertificate>(issued)
expectType<string>(issued.chain)
expectType<KeyType>(issued.keyType)
expectError(root.issue({ usage: 'peer' }))
expectError(root.issue({ keyType: 'dsa' }))
expectError(root.issue({ keyUsages: ['signEverything'] }))
expectError(root.issue({ extendedKeyUsages: ['anything'] }))
expectError(root.issue({ spifeId: 'spiffe://example.org/a' }))
expectError(createTestPki({ trustDomian: 'example.org' }))
expectError(issued.certificate = 'x')

root.revoke(issued, { reason: 'keyCompromise' })
expectError(root.revoke(issued, { reason: 'boredom' }))
expectType<Promise<string[]>>(root.createCrls({ days: 1 }))
expectType<readonly string[]>((await root.issue({ crlDistributionPoints: ['http://crl.example/1.crl'] })).crlDistributionPoints)
expectType<Promise<string>>(root.createCrl({ issuingDistributionPoint: 'http://crl.example/1.crl' }))
expectError(root.createCrl({ issuingDistributionPoint: ['http://crl.example/1.crl'] }))
expectError(root.issue({ crlDistributionPoints: 'http://crl.example/1.crl' }))
expectType<readonly string[] | null>(root.revoke({ serialNumber: '0A', crlDistributionPoints: ['http://crl.example/1.crl'] }).crlDistributionPoints)

const pki = await createTestPki({ trustDomain: 'example.org' })
expectType<TestPki>(pki)
expectType<readonly string[]>(pki.crl)
expectType<IssuedCertificate>(pki.orderService)
expectError(pki.nonexistent)

expectType<Promise<CertificateFiles>>(writeCertificateFiles('/tmp', 'x', issued))

const err = new PkiError('ERR_MTLS_PKI_FILE_UNREADABLE', 'x')
expectType<PkiErrorCode>(err.code)
expectAssignable<Error>(err)
expectError(new PkiError('NOT_A_CODE', 'x'))

// OCSP: issue options, what an issued certificate says, the responder.
const stapled = await root.issue({ ocspUrl: 'http://127.0.0.1:8888/', mustStaple: true })
expectType<string | null>(stapled.ocspUrl)
expectType<boolean>(stapled.mustStaple)
expectError(root.issue({ mustStaple: 'yes' }))
expectError(root.issue({ ocspUrl: ['http://a/'] }))
const responder = await root.startOcspResponder({ host: '127.0.0.1', port: 0, delegated: true, nextUpdateMinutes: 5 })
expectType<OcspResponder>(responder)
expectType<string>(responder.url)
expectType<number>(responder.port)
expectType<Promise<void>>(responder.refresh())
expectType<Promise<void>>(responder.close())
expectAssignable<OcspResponderOptions>({ signer: { certificate: 'pem', key: 'pem' } })
expectError(root.startOcspResponder({ prot: 1 }))
expectError(root.startOcspResponder({ delegated: 'yes' }))
expectType<readonly IssuedRecord[]>(root.issued)
