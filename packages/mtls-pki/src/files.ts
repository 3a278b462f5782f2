import { access, chmod, mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { CertificateAuthority, type IssuedCertificate, type RevokedCertificate } from './certificate-authority.js'
import { PkiError } from './errors.js'
import { checkOptionKeys, unknownOption } from './option-keys.js'
import { x509 } from './x509.js'

/** Where `writeCertificateFiles` put a certificate. */
export interface CertificateFiles {
  /** `NAME.pem`: the leaf. */
  readonly certFile: string
  /** `NAME-key.pem`: the private key, mode 0600. */
  readonly keyFile: string
  /** `NAME-chain.pem`: leaf and intermediate, what a TLS server or client presents. */
  readonly chainFile: string
  /** `NAME-ca.pem`: the root, what the other side trusts. */
  readonly caFile: string
}

/** The files of a CA directory as `mtls-pki init` lays it out. */
export const CA_DIRECTORY_FILES = Object.freeze({
  rootCert: 'root.pem',
  rootKey: 'root-key.pem',
  intermediateCert: 'intermediate.pem',
  intermediateKey: 'intermediate-key.pem',
  /** The trust bundle to give servers and clients: the root. */
  bundle: 'ca.pem',
  /** CRLs of root and intermediate. */
  crl: 'crl.pem',
  /** Revocations recorded by `mtls-pki revoke`. */
  revoked: 'revoked.json'
})

/** Writes a private key readable by its owner only. */
export async function writePrivateKey (file: string, pem: string): Promise<void> {
  await writeFile(file, pem, { mode: 0o600 })
  await chmod(file, 0o600) // the mode above applies only when the file is created
}

/** Writes an issued certificate as `NAME.pem`, `NAME-key.pem` (0600), `NAME-chain.pem` and `NAME-ca.pem`. */
export async function writeCertificateFiles (dir: string, name: string, issued: IssuedCertificate): Promise<CertificateFiles> {
  await mkdir(dir, { recursive: true })
  const files = {
    certFile: join(dir, `${name}.pem`),
    keyFile: join(dir, `${name}-key.pem`),
    chainFile: join(dir, `${name}-chain.pem`),
    caFile: join(dir, `${name}-ca.pem`)
  }
  await writePrivateKey(files.keyFile, issued.key)
  await Promise.all([
    writeFile(files.certFile, issued.certificate),
    writeFile(files.chainFile, issued.chain),
    writeFile(files.caFile, issued.ca)
  ])
  return Object.freeze(files)
}

/**
 * Writes a root and its intermediate into a CA directory (see CA_DIRECTORY_FILES), with a fresh CRL bundle.
 * Refuses to overwrite an existing CA unless `force` is set, so that a typo cannot replace a trusted root.
 */
export async function writeCertificateAuthority (dir: string, intermediate: CertificateAuthority, options: { force?: boolean } = {}): Promise<void> {
  checkOptionKeys(options, ['force'], 'writeCertificateAuthority')
  const root = intermediate.parent
  if (root === null) throw new PkiError('ERR_MTLS_PKI_INVALID_OPTION', 'writeCertificateAuthority needs an intermediate CA (with its root as parent)')
  const path = (name: string): string => join(dir, name)
  if (options.force !== true && await exists(path(CA_DIRECTORY_FILES.rootKey))) {
    throw new PkiError('ERR_MTLS_PKI_CA_EXISTS', `${path(CA_DIRECTORY_FILES.rootKey)} already exists; pass --force to replace the CA`, { file: path(CA_DIRECTORY_FILES.rootKey) })
  }
  await mkdir(dir, { recursive: true })
  await writePrivateKey(path(CA_DIRECTORY_FILES.rootKey), root.key)
  await writePrivateKey(path(CA_DIRECTORY_FILES.intermediateKey), intermediate.key)
  await Promise.all([
    writeFile(path(CA_DIRECTORY_FILES.rootCert), root.certificate),
    writeFile(path(CA_DIRECTORY_FILES.intermediateCert), intermediate.certificate),
    writeFile(path(CA_DIRECTORY_FILES.bundle), root.certificate),
    writeRevocations(dir, intermediate)
  ])
}

/** Reads a CA directory back: the intermediate (with its root as `parent`) and the revocations recorded so far. */
export async function loadCertificateAuthority (dir: string): Promise<CertificateAuthority> {
  const read = async (name: string): Promise<string> => await readText(join(dir, name))
  // One after the other, so that a missing directory is always reported by its first file.
  const rootCert = await read(CA_DIRECTORY_FILES.rootCert)
  const rootKey = await read(CA_DIRECTORY_FILES.rootKey)
  const intermediateCert = await read(CA_DIRECTORY_FILES.intermediateCert)
  const intermediateKey = await read(CA_DIRECTORY_FILES.intermediateKey)
  // fromPem names only the key file in its errors: a broken certificate is named here.
  checkCertificate(rootCert, join(dir, CA_DIRECTORY_FILES.rootCert))
  checkCertificate(intermediateCert, join(dir, CA_DIRECTORY_FILES.intermediateCert))
  const root = await CertificateAuthority.fromPem(rootCert, rootKey, null, join(dir, CA_DIRECTORY_FILES.rootKey))
  const intermediate = await CertificateAuthority.fromPem(intermediateCert, intermediateKey, root, join(dir, CA_DIRECTORY_FILES.intermediateKey))

  const revokedFile = join(dir, CA_DIRECTORY_FILES.revoked)
  if (await exists(revokedFile)) {
    for (const entry of parseRevocations(await readText(revokedFile), revokedFile)) {
      const ca = entry.issuer === 'root' ? root : intermediate
      ca.revoke(entry.serialNumber, { date: new Date(entry.date), reason: entry.reason })
    }
  }
  return intermediate
}

/** Records the revocations of an intermediate and its root in the CA directory and writes a fresh `crl.pem`. */
export async function writeRevocations (dir: string, intermediate: CertificateAuthority, crlDays?: number): Promise<string> {
  const root = intermediate.root
  const entries = [
    ...root.revoked.map(entry => ({ issuer: 'root', ...entry })),
    ...intermediate.revoked.map(entry => ({ issuer: 'intermediate', ...entry }))
  ]
  const crlFile = join(dir, CA_DIRECTORY_FILES.crl)
  await writeFile(join(dir, CA_DIRECTORY_FILES.revoked), JSON.stringify(entries, null, 2) + '\n')
  await writeFile(crlFile, (await intermediate.createCrls(crlDays === undefined ? {} : { days: crlDays })).join(''))
  return crlFile
}

/** Reads a text file, or throws a PkiError that names the file and the reason. */
export async function readText (file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8')
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message
    throw new PkiError('ERR_MTLS_PKI_FILE_UNREADABLE', `${file}: cannot read (${reason})`, { file, cause: err })
  }
}

interface StoredRevocation extends RevokedCertificate {
  readonly issuer: 'root' | 'intermediate'
}

function parseRevocations (text: string, file: string): StoredRevocation[] {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (err) {
    throw new PkiError('ERR_MTLS_PKI_MALFORMED_INPUT', `${file}: not valid JSON (${(err as Error).message})`, { file, cause: err })
  }
  if (!Array.isArray(value)) throw new PkiError('ERR_MTLS_PKI_MALFORMED_INPUT', `${file}: expected a list of revocations`, { file })
  return value.map((entry: unknown, index) => {
    const where = `${file}: entry ${index + 1}`
    if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) throw new PkiError('ERR_MTLS_PKI_MALFORMED_INPUT', `${where}: expected { issuer, serialNumber, date, reason }`, { file })
    const unknown = unknownOption(entry, ['issuer', 'serialNumber', 'date', 'reason'], where)
    if (unknown !== null) throw new PkiError('ERR_MTLS_PKI_MALFORMED_INPUT', unknown, { file })
    const { issuer, serialNumber, date, reason } = entry as Record<string, unknown>
    if (issuer !== 'root' && issuer !== 'intermediate') throw new PkiError('ERR_MTLS_PKI_MALFORMED_INPUT', `${where}: issuer must be "root" or "intermediate"; got ${JSON.stringify(issuer)}`, { file })
    if (typeof serialNumber !== 'string' || !/^[0-9A-Fa-f]+$/.test(serialNumber)) throw new PkiError('ERR_MTLS_PKI_MALFORMED_INPUT', `${where}: serialNumber must be hexadecimal; got ${JSON.stringify(serialNumber)}`, { file })
    if (typeof date !== 'string' || Number.isNaN(Date.parse(date))) throw new PkiError('ERR_MTLS_PKI_MALFORMED_INPUT', `${where}: date must be an ISO date; got ${JSON.stringify(date)}`, { file })
    if (typeof reason !== 'string' || !(reason in x509.X509CrlReason) || typeof x509.X509CrlReason[reason as keyof typeof x509.X509CrlReason] !== 'number') {
      throw new PkiError('ERR_MTLS_PKI_MALFORMED_INPUT', `${where}: reason must be a revocation reason (keyCompromise, superseded, …); got ${JSON.stringify(reason)}`, { file })
    }
    return { issuer, serialNumber, date: new Date(date), reason: reason as StoredRevocation['reason'] }
  })
}

function checkCertificate (pem: string, file: string): x509.X509Certificate {
  try {
    return new x509.X509Certificate(pem)
  } catch (err) {
    throw new PkiError('ERR_MTLS_PKI_MALFORMED_INPUT', `${file}: not a readable certificate (${(err as Error).message})`, { file, cause: err })
  }
}

async function exists (file: string): Promise<boolean> {
  return await access(file).then(() => true, () => false)
}
