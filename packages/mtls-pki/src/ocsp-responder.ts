// A development OCSP responder: the real OpenSSL one (`openssl ocsp -index ... -port ...`), fed an index file made
// from what a CertificateAuthority issued and revoked. Nothing here answers OCSP itself.
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm, utimes } from 'node:fs/promises'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { writeFilesAtomically } from './atomic-write.js'
import type { CertificateAuthority, IssuedRecord, RevokedCertificate } from './certificate-authority.js'
import { PkiError } from './errors.js'
import { checkOptionKeys } from './option-keys.js'

export interface OcspResponderOptions {
  /** The host of `url`. Default: `127.0.0.1`. OpenSSL 3.0's responder takes a port only and listens on every interface. */
  host?: string
  /** The port to listen on; `0` (the default) lets the system choose one, which `port` and `url` then give. */
  port?: number
  /** Signs with a responder certificate this CA issues for it (extended key usage id-kp-OCSPSigning) instead of the CA's own key. Default: `false`. */
  delegated?: boolean
  /** Signs with this certificate and key (PEM), whatever they are: for tests of responses a client must refuse. Not with `delegated`. */
  signer?: { certificate: string, key: string }
  /** Minutes from each response's thisUpdate to its nextUpdate (`openssl ocsp -nmin`). Default: 60. */
  nextUpdateMinutes?: number
  /** Where the index, CA and responder files go. Default: a new temporary folder, removed by `close()`. */
  directory?: string
  /** The `openssl` command. Default: `openssl` on the PATH. */
  openssl?: string
}

/** A running `openssl ocsp` responder. */
export interface OcspResponder {
  /** `http://HOST:PORT/`: what `issue({ ocspUrl })` writes into certificates. */
  readonly url: string
  readonly port: number
  /** The certificate that signs the responses (PEM): the CA's, a delegated responder's or `signer`'s. */
  readonly signerCertificate: string
  /** The index file OpenSSL reads (OpenSSL's `ca` database format). */
  readonly indexFile: string
  /**
   * Rewrites the index from the CA's records and waits until OpenSSL answers from it. Every `issue()` and `revoke()`
   * on the CA starts one; await this before asking about a certificate issued or revoked a moment ago.
   */
  refresh: () => Promise<void>
  /** Stops the responder and removes the files it made (the whole folder when `directory` was not given). */
  close: () => Promise<void>
}

const RESPONDER_KEYS = ['host', 'port', 'delegated', 'signer', 'nextUpdateMinutes', 'directory', 'openssl'] as const satisfies ReadonlyArray<keyof OcspResponderOptions>

// A hang limit, not a speed target: openssl starts in milliseconds, a loaded CI machine may take seconds.
const START_LIMIT_MS = 20_000

// Reason names `openssl ca` writes in an index; the two RFC 5280 reasons OpenSSL's index cannot hold are left out (no reason).
const OPENSSL_REASONS: Readonly<Record<string, string>> = {
  unspecified: 'unspecified',
  keyCompromise: 'keyCompromise',
  cACompromise: 'CACompromise',
  affiliationChanged: 'affiliationChanged',
  superseded: 'superseded',
  cessationOfOperation: 'cessationOfOperation',
  certificateHold: 'certificateHold',
  removeFromCRL: 'removeFromCRL'
}

/** Starts `openssl ocsp` over `ca`; `subscribe` registers a callback run on each issue and revocation and returns its removal. */
export async function startOcspResponder (ca: CertificateAuthority, options: OcspResponderOptions, subscribe: (listener: () => void) => () => void): Promise<OcspResponder> {
  checkOptionKeys(options, RESPONDER_KEYS, 'startOcspResponder')
  const host = options.host ?? '127.0.0.1'
  if (typeof host !== 'string' || host === '') throw invalid(`host must be a host name or address; got ${JSON.stringify(host)}`)
  const port = options.port ?? 0
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw invalid(`port must be an integer from 0 to 65535; got ${JSON.stringify(port)}`)
  const nextUpdateMinutes = options.nextUpdateMinutes ?? 60
  if (!Number.isInteger(nextUpdateMinutes) || nextUpdateMinutes < 1) throw invalid(`nextUpdateMinutes must be a whole number of minutes, at least 1; got ${JSON.stringify(nextUpdateMinutes)}`)
  if (options.delegated !== undefined && typeof options.delegated !== 'boolean') throw invalid(`delegated must be true or false; got ${JSON.stringify(options.delegated)}`)
  if (options.signer !== undefined && (typeof options.signer?.certificate !== 'string' || typeof options.signer.key !== 'string')) throw invalid('signer must be { certificate, key }, both PEM')
  if (options.signer !== undefined && options.delegated === true) throw invalid('give signer or delegated, not both')

  const signer = options.signer ?? (options.delegated === true ? await delegatedSigner(ca) : { certificate: ca.certificate, key: ca.key })
  const ownDirectory = options.directory === undefined
  const directory = options.directory ?? await mkdtemp(join(tmpdir(), 'mtls-pki-ocsp-'))
  const files = {
    index: join(directory, 'index.txt'),
    ca: join(directory, 'ocsp-ca.pem'),
    signer: join(directory, 'ocsp-signer.pem'),
    key: join(directory, 'ocsp-signer-key.pem')
  }
  let indexTime = 0
  const writeIndex = async (): Promise<void> => {
    await writeFilesAtomically([{ file: files.index, content: indexText(ca.issued, ca.revoked, ca.notAfter) }])
    // OpenSSL reloads the index when its stat changes; a rename within the same second may reuse the inode and keep
    // the mtime, so every write gets a later mtime than the last.
    indexTime = Math.max(indexTime + 1, Math.ceil(Date.now() / 1000))
    await utimes(files.index, indexTime, indexTime)
  }
  const cleanUp = async (): Promise<void> => {
    await rm(ownDirectory ? directory : files.key, { recursive: true, force: true })
  }
  try {
    await writeFilesAtomically([
      // unique_subject = no: a CA may issue many certificates with one subject (renewals), as `openssl ca` allows.
      { file: `${files.index}.attr`, content: 'unique_subject = no\n' },
      { file: files.ca, content: ca.certificate },
      { file: files.signer, content: signer.certificate },
      { file: files.key, content: signer.key, secret: true }
    ])
    await writeIndex()
  } catch (err) {
    // The write's error is the one to report: a folder that cannot be written may not be cleaned either.
    await cleanUp().catch(() => {})
    throw err
  }

  const args = ['ocsp', '-index', files.index, '-CA', files.ca, '-rsigner', files.signer, '-rkey', files.key, '-port', String(port), '-nmin', String(nextUpdateMinutes), '-ignore_err']
  const child = spawn(options.openssl ?? 'openssl', args, { stdio: ['ignore', 'pipe', 'pipe'] })
  let listening: number
  try {
    listening = await acceptedPort(child)
    await poke(host, listening)
  } catch (err) {
    child.kill()
    await cleanUp()
    throw err
  }

  let chain = Promise.resolve()
  let closed = false
  const refresh = async (): Promise<void> => {
    if (closed) throw new PkiError('ERR_MTLS_PKI_OCSP_RESPONDER', 'the OCSP responder is closed')
    // OpenSSL looks at the index before it waits for a connection, so the request after a rewrite still gets the
    // old answers: one throwaway request makes it look again before it serves the next.
    const next = chain.then(async () => {
      await writeIndex()
      await poke(host, listening)
    })
    chain = next.catch(() => {})
    await next
  }
  const unsubscribe = subscribe(() => { refresh().catch(() => {}) })
  const exited = new Promise<void>(resolve => { child.once('exit', () => { resolve() }) })
  return Object.freeze({
    url: `http://${host.includes(':') ? `[${host}]` : host}:${listening}/`,
    port: listening,
    signerCertificate: signer.certificate,
    indexFile: files.index,
    refresh,
    async close () {
      if (closed) return
      closed = true
      unsubscribe()
      await chain
      if (child.exitCode === null && child.signalCode === null) child.kill()
      await exited
      await cleanUp()
    }
  })
}

/** The index in the format of `openssl ca`: a `V` line for each issued certificate, an `R` line for each revoked one. */
export function indexText (issued: readonly IssuedRecord[], revoked: readonly RevokedCertificate[], caNotAfter: Date): string {
  const revokedSerials = new Map(revoked.map(entry => [entry.serialNumber, entry]))
  const lines: string[] = []
  for (const record of issued) {
    if (!revokedSerials.has(record.serialNumber)) lines.push(indexLine('V', record.notAfter, '', record.serialNumber, record.subject))
  }
  const issuedBySerial = new Map(issued.map(record => [record.serialNumber, record]))
  for (const entry of revoked) {
    const record = issuedBySerial.get(entry.serialNumber)
    const reason = OPENSSL_REASONS[entry.reason]
    const revocation = `${asn1Time(entry.date)}${reason === undefined ? '' : `,${reason}`}`
    lines.push(indexLine('R', record?.notAfter ?? caNotAfter, revocation, entry.serialNumber, record?.subject ?? ''))
  }
  return lines.join('')
}

function indexLine (status: 'V' | 'R', notAfter: Date, revocation: string, serialNumber: string, subject: string): string {
  // OpenSSL looks serials up as BN_bn2hex prints them: uppercase, whole bytes.
  const serial = serialNumber.length % 2 === 1 ? `0${serialNumber}` : serialNumber
  // The name field is free text to `openssl ocsp` (unique_subject = no); a tab or line break would split the line.
  return `${status}\t${asn1Time(notAfter)}\t${revocation}\t${serial}\tunknown\t/${subject.replace(/[\t\r\n]/g, ' ')}\n`
}

// UTCTime (YYMMDDHHMMSSZ) as `openssl ca` writes it; GeneralizedTime from 2050, as RFC 5280 4.1.2.5 has it.
function asn1Time (date: Date): string {
  const iso = date.toISOString().replace(/[-:T]/g, '').slice(0, 14)
  return `${date.getUTCFullYear() < 2050 ? iso.slice(2) : iso}Z`
}

async function delegatedSigner (ca: CertificateAuthority): Promise<{ certificate: string, key: string }> {
  const cn = /CN=([^,]+)/.exec(ca.subject)?.[1] ?? 'mtls-pki'
  const issued = await ca.issue({ commonName: `${cn} OCSP responder`, extendedKeyUsages: ['ocspSigning'], keyUsages: ['digitalSignature'], keyType: ca.keyType, days: 30 })
  return { certificate: issued.certificate, key: issued.key }
}

/** The port from OpenSSL's `ACCEPT [::]:PORT PID=N` line; an exit before it is an error with OpenSSL's words. */
async function acceptedPort (child: ChildProcess): Promise<number> {
  return await new Promise<number>((resolve, reject) => {
    let stdout = ''
    let stderr = ''
    const fail = (why: string): void => {
      clearTimeout(timer)
      reject(new PkiError('ERR_MTLS_PKI_OCSP_RESPONDER', `openssl ocsp ${why}${stderr.trim() === '' ? '' : `: ${stderr.trim().split('\n').slice(-3).join(' ')}`}`))
    }
    const timer = setTimeout(() => { fail(`did not listen within ${START_LIMIT_MS / 1000} s`) }, START_LIMIT_MS)
    child.stdout?.setEncoding('utf8').on('data', (text: string) => {
      stdout = (stdout + text).slice(-4096)
      const accepted = /ACCEPT .*:(\d+)/.exec(stdout)
      if (accepted !== null) {
        clearTimeout(timer)
        resolve(Number(accepted[1]))
      }
    })
    // Keep the end only: a long-running responder logs a line per request.
    child.stderr?.setEncoding('utf8').on('data', (text: string) => { stderr = (stderr + text).slice(-4096) })
    child.once('error', err => { fail(`could not start (${err.message})`) })
    child.once('exit', (code, signal) => { fail(`exited (${signal ?? `code ${String(code)}`}) before it listened`) })
  })
}

/** One request and its answer (or the closed connection): proves the responder is serving and makes it re-read its index. */
async function poke (host: string, port: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const socket = connect({ host, port })
    socket.setTimeout(START_LIMIT_MS, () => { socket.destroy(new Error('no answer')) })
    socket.on('connect', () => { socket.end('GET / HTTP/1.0\r\n\r\n') })
    socket.resume()
    socket.on('close', () => { resolve() })
    socket.on('error', err => { reject(new PkiError('ERR_MTLS_PKI_OCSP_RESPONDER', `the OCSP responder on ${host}:${port} does not answer (${err.message})`, { cause: err })) })
  })
}

function invalid (message: string): PkiError {
  return new PkiError('ERR_MTLS_PKI_INVALID_OPTION', `startOcspResponder: ${message}`)
}
