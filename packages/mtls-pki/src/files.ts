import { access, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { createDirectory, writeFilesAtomically, type FileToWrite } from './atomic-write.js'
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

/** Writes a private key readable by its owner only: a new file of mode 0600 renamed over `file`, never through a link. */
export async function writePrivateKey (file: string, pem: string): Promise<void> {
  await writeFilesAtomically([{ file, content: pem, secret: true }])
}

/** Writes an issued certificate as `NAME.pem`, `NAME-key.pem` (0600), `NAME-chain.pem` and `NAME-ca.pem`. */
export async function writeCertificateFiles (dir: string, name: string, issued: IssuedCertificate): Promise<CertificateFiles> {
  await createDirectory(dir)
  const files = {
    certFile: join(dir, `${name}.pem`),
    keyFile: join(dir, `${name}-key.pem`),
    chainFile: join(dir, `${name}-chain.pem`),
    caFile: join(dir, `${name}-ca.pem`)
  }
  await writeFilesAtomically([
    { file: files.keyFile, content: issued.key, secret: true },
    { file: files.certFile, content: issued.certificate },
    { file: files.chainFile, content: issued.chain },
    { file: files.caFile, content: issued.ca }
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
  await createDirectory(dir)
  await writeFilesAtomically([
    { file: path(CA_DIRECTORY_FILES.rootKey), content: root.key, secret: true },
    { file: path(CA_DIRECTORY_FILES.intermediateKey), content: intermediate.key, secret: true },
    { file: path(CA_DIRECTORY_FILES.rootCert), content: root.certificate },
    { file: path(CA_DIRECTORY_FILES.intermediateCert), content: intermediate.certificate },
    { file: path(CA_DIRECTORY_FILES.bundle), content: root.certificate },
    ...revocationFiles(dir, intermediate, await intermediate.createCrls())
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
      ca.revoke(entry, { date: entry.date, reason: entry.reason })
    }
  }
  return intermediate
}

/** Records the revocations of an intermediate and its root in the CA directory with `crls` (default: fresh ones) as `crl.pem`. */
export async function writeRevocations (dir: string, intermediate: CertificateAuthority, crls?: readonly string[]): Promise<string> {
  await writeFilesAtomically(revocationFiles(dir, intermediate, crls ?? await intermediate.createCrls()))
  return join(dir, CA_DIRECTORY_FILES.crl)
}

function revocationFiles (dir: string, intermediate: CertificateAuthority, crls: readonly string[]): FileToWrite[] {
  // Distribution points only where known: a revocation by serial is stored as it always was.
  const stored = (issuer: StoredRevocation['issuer'], { crlDistributionPoints, ...entry }: RevokedCertificate): object =>
    ({ issuer, ...entry, ...(crlDistributionPoints === null ? {} : { crlDistributionPoints }) })
  const entries = [
    ...intermediate.root.revoked.map(entry => stored('root', entry)),
    ...intermediate.revoked.map(entry => stored('intermediate', entry))
  ]
  return [
    { file: join(dir, CA_DIRECTORY_FILES.revoked), content: JSON.stringify(entries, null, 2) + '\n' },
    { file: join(dir, CA_DIRECTORY_FILES.crl), content: crls.join('') }
  ]
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
    const unknown = unknownOption(entry, ['issuer', 'serialNumber', 'date', 'reason', 'crlDistributionPoints'], where)
    if (unknown !== null) throw new PkiError('ERR_MTLS_PKI_MALFORMED_INPUT', unknown, { file })
    const { issuer, serialNumber, date, reason, crlDistributionPoints = null } = entry as Record<string, unknown>
    if (issuer !== 'root' && issuer !== 'intermediate') throw new PkiError('ERR_MTLS_PKI_MALFORMED_INPUT', `${where}: issuer must be "root" or "intermediate"; got ${JSON.stringify(issuer)}`, { file })
    if (typeof serialNumber !== 'string' || !/^[0-9A-Fa-f]+$/.test(serialNumber)) throw new PkiError('ERR_MTLS_PKI_MALFORMED_INPUT', `${where}: serialNumber must be hexadecimal; got ${JSON.stringify(serialNumber)}`, { file })
    if (typeof date !== 'string' || Number.isNaN(Date.parse(date))) throw new PkiError('ERR_MTLS_PKI_MALFORMED_INPUT', `${where}: date must be an ISO date; got ${JSON.stringify(date)}`, { file })
    if (typeof reason !== 'string' || !(reason in x509.X509CrlReason) || typeof x509.X509CrlReason[reason as keyof typeof x509.X509CrlReason] !== 'number') {
      throw new PkiError('ERR_MTLS_PKI_MALFORMED_INPUT', `${where}: reason must be a revocation reason (keyCompromise, superseded, …); got ${JSON.stringify(reason)}`, { file })
    }
    if (crlDistributionPoints !== null && (!Array.isArray(crlDistributionPoints) || !crlDistributionPoints.every(uri => typeof uri === 'string' && URL.canParse(uri)))) {
      throw new PkiError('ERR_MTLS_PKI_MALFORMED_INPUT', `${where}: crlDistributionPoints must be a list of URIs; got ${JSON.stringify(crlDistributionPoints)}`, { file })
    }
    return { issuer, serialNumber, date: new Date(date), reason: reason as StoredRevocation['reason'], crlDistributionPoints: crlDistributionPoints as string[] | null }
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
