export {
  CertificateAuthority,
  createRootCa,
  type CertificateAuthorityOptions,
  type CertificateUsage,
  type CrlOptions,
  type ExtendedKeyUsageName,
  type IssuedCertificate,
  type IssuedRecord,
  type IssueOptions,
  type KeyUsageName,
  type RevocationReason,
  type RevocationTarget,
  type RevokedCertificate,
  type RevokeOptions
} from './certificate-authority.js'
export type { OcspResponder, OcspResponderOptions } from './ocsp-responder.js'
export { PkiError, type PkiErrorCode } from './errors.js'
export {
  CA_DIRECTORY_FILES,
  loadCertificateAuthority,
  writeCertificateAuthority,
  writeCertificateFiles,
  writePrivateKey,
  type CertificateFiles
} from './files.js'
export { describeCertificate, formatInspection, type CertificateDescription } from './inspect.js'
export { KEY_TYPES, type KeyType } from './key-types.js'
export { createTestPki, type TestPki, type TestPkiOptions } from './test-pki.js'
export type { ValidityOptions } from './validity.js'
