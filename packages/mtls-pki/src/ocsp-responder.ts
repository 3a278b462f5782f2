// A development OCSP responder: the real OpenSSL one answers each request (`openssl ocsp -index ... -reqin ...
// -respout ...`, its responder run once per request), over an index file made from what a CertificateAuthority issued
// and revoked; a Node HTTP server on one address carries the requests to it. OpenSSL 3.0's own server mode
// (`-port N`) listens on every interface and cannot be told otherwise. Nothing here answers OCSP itself.
import { execFile } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { writeFilesAtomically } from './atomic-write.js'
import type { CertificateAuthority, IssuedRecord, RevokedCertificate } from './certificate-authority.js'
import { PkiError } from './errors.js'
import { checkOptionKeys } from './option-keys.js'

export interface OcspResponderOptions {
  /** The address to listen on, and the host of `url`. Default: `127.0.0.1`. */
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

/** A running OCSP responder: OpenSSL answers, one `openssl ocsp` run per request. */
export interface OcspResponder {
  /** `http://HOST:PORT/`: what `issue({ ocspUrl })` writes into certificates. */
  readonly url: string
  readonly port: number
  /** The certificate that signs the responses (PEM): the CA's, a delegated responder's or `signer`'s. */
  readonly signerCertificate: string
  /** The index file OpenSSL reads (OpenSSL's `ca` database format). */
  readonly indexFile: string
  /** Requests answered (by OpenSSL) so far. */
  readonly answered: number
  /**
   * Rewrites the index from the CA's records: the next request is answered from it. Every `issue()` and `revoke()`
   * on the CA starts one; await this before asking about a certificate issued or revoked a moment ago.
   */
  refresh: () => Promise<void>
  /** Stops the responder and removes the files it made (the whole folder when `directory` was not given). */
  close: () => Promise<void>
}

const RESPONDER_KEYS = ['host', 'port', 'delegated', 'signer', 'nextUpdateMinutes', 'directory', 'openssl'] as const satisfies ReadonlyArray<keyof OcspResponderOptions>

// A hang limit, not a speed target: openssl answers in milliseconds, a loaded CI machine may take seconds.
const ANSWER_LIMIT_MS = 20_000
// An OCSP request is a few hundred bytes; a body past this is no request of ours.
const MAX_REQUEST_BYTES = 64 * 1024

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
  let chain = Promise.resolve()
  const writeIndex = async (): Promise<void> => {
    const next = chain.then(async () => { await writeFilesAtomically([{ file: files.index, content: indexText(ca.issued, ca.revoked, ca.notAfter) }]) })
    chain = next.catch(() => {})
    await next
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

  const openssl = options.openssl ?? 'openssl'
  let answered = 0
  let requests = 0
  // OpenSSL's responder, run on one request: the index is read afresh each time, so a revocation shows at once.
  const answer = async (request: Buffer): Promise<Buffer> => {
    const name = join(directory, `request-${++requests}`)
    await writeFile(`${name}.der`, request)
    try {
      await chain
      await run(openssl, ['ocsp', '-index', files.index, '-CA', files.ca, '-rsigner', files.signer, '-rkey', files.key, '-reqin', `${name}.der`, '-respout', `${name}-response.der`, '-nmin', String(nextUpdateMinutes)])
      answered++
      return await readFile(`${name}-response.der`)
    } finally {
      await rm(`${name}.der`, { force: true })
      await rm(`${name}-response.der`, { force: true })
    }
  }
  // The first run proves the openssl command works, before anyone relies on the responder.
  try {
    await run(openssl, ['version'])
  } catch (err) {
    await cleanUp()
    throw err
  }

  const server = createServer((request, response) => { serve(request, response, answer) })
  try {
    server.listen(port, host)
    await once(server, 'listening')
  } catch (err) {
    server.close()
    await cleanUp()
    throw new PkiError('ERR_MTLS_PKI_OCSP_RESPONDER', `the OCSP responder cannot listen on ${host}:${port} (${(err as Error).message})`, { cause: err })
  }
  const listening = (server.address() as AddressInfo).port

  let closed = false
  const refresh = async (): Promise<void> => {
    if (closed) throw new PkiError('ERR_MTLS_PKI_OCSP_RESPONDER', 'the OCSP responder is closed')
    await writeIndex()
  }
  const unsubscribe = subscribe(() => { refresh().catch(() => {}) })
  return Object.freeze({
    url: `http://${host.includes(':') ? `[${host}]` : host}:${listening}/`,
    port: listening,
    signerCertificate: signer.certificate,
    indexFile: files.index,
    get answered () { return answered },
    refresh,
    async close () {
      if (closed) return
      closed = true
      unsubscribe()
      server.closeAllConnections()
      await new Promise(resolve => { server.close(resolve) })
      await chain
      await cleanUp()
    }
  })
}

// RFC 6960 appendix A.1: a POST of the DER request, or a GET of its base64 (URL-encoded) in the path.
function serve (request: IncomingMessage, response: ServerResponse, answer: (request: Buffer) => Promise<Buffer>): void {
  const fail = (status: number, why: string): void => {
    if (!response.headersSent) response.writeHead(status, { 'content-type': 'text/plain' })
    response.end(`${why}\n`)
  }
  const reply = (body: Buffer): void => {
    answer(body).then(der => {
      response.writeHead(200, { 'content-type': 'application/ocsp-response', 'content-length': der.length })
      response.end(der)
    }, (err: Error) => { fail(500, `openssl ocsp: ${err.message}`) })
  }
  if (request.method === 'GET') {
    const path = decodeURIComponent((request.url ?? '/').slice(1))
    if (path === '') { fail(400, 'an OCSP request: POST it, or GET /<base64 of it>'); return }
    reply(Buffer.from(path, 'base64'))
    return
  }
  if (request.method !== 'POST') { fail(405, 'GET or POST'); return }
  const chunks: Buffer[] = []
  let size = 0
  request.on('data', (chunk: Buffer) => {
    size += chunk.length
    if (size <= MAX_REQUEST_BYTES) chunks.push(chunk)
    // Answered at once; the rest is read and dropped, so the answer is not lost to a reset connection.
    else if (!response.headersSent) { response.setHeader('connection', 'close'); fail(413, 'too large for an OCSP request') }
  })
  request.on('end', () => { if (size <= MAX_REQUEST_BYTES) reply(Buffer.concat(chunks)) })
}

/** Runs a command to its end; an error with its own last words when it fails or hangs. */
async function run (command: string, args: string[]): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    execFile(command, args, { timeout: ANSWER_LIMIT_MS }, (err, _stdout, stderr) => {
      if (err === null) { resolve(); return }
      const words = String(stderr).trim().split('\n').slice(-3).join(' ')
      const why = (err as NodeJS.ErrnoException).code === 'ENOENT' ? `could not start (${err.message})` : `failed (${err.message.split('\n')[0]})${words === '' ? '' : `: ${words}`}`
      reject(new PkiError('ERR_MTLS_PKI_OCSP_RESPONDER', `openssl ocsp ${why}`, { cause: err }))
    })
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

function invalid (message: string): PkiError {
  return new PkiError('ERR_MTLS_PKI_INVALID_OPTION', `startOcspResponder: ${message}`)
}
