// The toolkit's own building blocks, shared by its packages: `mtls-core/internal`. Not part of the public API:
// these may change in any release, semver minor and patch included.
export { KEY_USAGE, formatName, readCertificateFields, type CertificateFields, type NameRange } from './der.js'
export { codeOf, describeThrown } from './errors.js'
export { FileReadError, readRegularFile } from './file-read.js'
export { watchFiles, type FileWatcher, type FileWatchOptions } from './file-watcher.js'
export { MATERIAL_INPUT_KEYS, secondsToExpiry, summarize } from './material.js'
export { snapshotOptions, unknownOption } from './option-keys.js'
export { connectionExpiry, handshakeTrust, peerCertificate, peerCertificateDer, presentedChainExpiry, presentedIntermediates, recordHandshakeTrust, reverifyConnection } from './peer-certificate.js'
export { readPemBlocks, toPem, type PemBlock } from './pem.js'
