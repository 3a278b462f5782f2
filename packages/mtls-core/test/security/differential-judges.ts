// Three judges of one client certificate chain: mtls-core's ChainVerifier, `openssl verify` (x509_strict, the TLS
// client purpose, CRL_CHECK_ALL when there are CRLs) and a real Node TLS handshake (a server with the case's trust,
// requestCert, TLS 1.3). Cases come in groups that share a trust (roots and CRLs): one verifier, one `openssl verify`
// run and one TLS server per group, so thousands of cases cost seconds. The verifier must never accept what either
// OpenSSL judge refuses; `disagreement` says so and shows the chain and CRLs as PEM.
import { execFile } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as tls from 'node:tls'
import { Worker } from 'node:worker_threads'
import { hangLimit } from 'mtls-test-support'
import { toPem, type ForgeKey } from 'mtls-test-support/certificate-forge'
import { ChainVerifier, MaterialError, VerificationError } from '../../src/index.js'

/** One client certificate chain to judge. */
export interface DifferentialCase {
  readonly name: string
  readonly leaf: Buffer
  /** The CA certificates the client presents after its leaf. */
  readonly intermediates: readonly Buffer[]
  /** The leaf's key, for the handshake. */
  readonly key: ForgeKey
}

/** Cases judged under one trust. `openssl verify` gets every intermediate of the group as untrusted certificates. */
export interface DifferentialGroup {
  readonly roots: readonly Buffer[]
  readonly crls: readonly Buffer[]
  readonly cases: readonly DifferentialCase[]
}

/** Each judge's verdict: `null` accepts; otherwise a reason (OpenSSL's name, Node's code, the verifier's code). */
export interface Verdicts {
  readonly verifier: string | null
  readonly openssl: string | null
  readonly handshake: string | null
}

export interface JudgeOptions {
  /** The TLS server's own certificate chain and key (PEM). */
  readonly server: { readonly cert: string, readonly key: string }
  /** Handshakes in flight at once, per group. Default 8. */
  readonly concurrency?: number
  /** Groups judged at once. Default 4. */
  readonly groupConcurrency?: number
}

/** Judges every case of every group; verdicts in the order of the groups' cases. */
export async function judge (groups: readonly DifferentialGroup[], options: JudgeOptions): Promise<Verdicts[][]> {
  const servers = new ServerThread()
  try {
    return await inPool(groups, options.groupConcurrency ?? 4, async group => {
      // openssl runs in its own process, the servers in their thread, while this one shakes hands as the clients.
      const [openssl, handshake] = await Promise.all([opensslVerdicts(group), handshakeVerdicts(group, options, servers)])
      const verifier = verifierVerdicts(group)
      return group.cases.map((_, index) => ({ verifier: verifier[index] as string | null, openssl: openssl[index] as string | null, handshake: handshake[index] as string | null }))
    })
  } finally {
    await servers.stop()
  }
}

// `work` on each item, `width` at a time; results in the items' order.
async function inPool<T, R> (items: readonly T[], width: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length)
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++
      results[index] = await work(items[index] as T)
    }
  }
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, worker))
  return results
}

/** A description of the disagreement when the verifier accepted what an OpenSSL judge refused; `null` otherwise. */
export function disagreement (group: DifferentialGroup, testCase: DifferentialCase, verdicts: Verdicts): string | null {
  if (verdicts.verifier !== null || (verdicts.openssl === null && verdicts.handshake === null)) return null
  return [
    `${testCase.name}: the verifier accepts; openssl verify says ${String(verdicts.openssl)}, the handshake ${String(verdicts.handshake)}`,
    'leaf and presented intermediates:',
    ...[testCase.leaf, ...testCase.intermediates].map(der => toPem(der)),
    'trusted roots:',
    ...group.roots.map(der => toPem(der)),
    ...(group.crls.length === 0 ? [] : ['CRLs:', ...group.crls.map(der => toPem(der, 'X509 CRL'))])
  ].join('\n')
}

function verifierVerdicts (group: DifferentialGroup): Array<string | null> {
  let verifier: ChainVerifier
  try {
    verifier = new ChainVerifier({ ca: group.roots.map(der => toPem(der)), ...(group.crls.length === 0 ? {} : { crl: group.crls.map(der => toPem(der, 'X509 CRL')) }) })
  } catch (err) {
    if (err instanceof MaterialError || err instanceof VerificationError) return group.cases.map(() => err.code)
    throw err
  }
  return group.cases.map(testCase => {
    try {
      verifier.verify(testCase.leaf, { purpose: 'client', intermediates: testCase.intermediates })
      return null
    } catch (err) {
      if (err instanceof VerificationError) return err.code
      throw err
    }
  })
}

// OpenSSL 3.0's X509_V_ERR_* numbers, as `openssl verify` prints them ("error 20 at 0 depth lookup: ...").
const X509_V_ERRORS = [
  'OK', 'UNSPECIFIED', 'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_CRL', 'UNABLE_TO_DECRYPT_CERT_SIGNATURE',
  'UNABLE_TO_DECRYPT_CRL_SIGNATURE', 'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY', 'CERT_SIGNATURE_FAILURE', 'CRL_SIGNATURE_FAILURE',
  'CERT_NOT_YET_VALID', 'CERT_HAS_EXPIRED', 'CRL_NOT_YET_VALID', 'CRL_HAS_EXPIRED', 'ERROR_IN_CERT_NOT_BEFORE_FIELD',
  'ERROR_IN_CERT_NOT_AFTER_FIELD', 'ERROR_IN_CRL_LAST_UPDATE_FIELD', 'ERROR_IN_CRL_NEXT_UPDATE_FIELD', 'OUT_OF_MEM',
  'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'CERT_CHAIN_TOO_LONG', 'CERT_REVOKED', 'NO_ISSUER_PUBLIC_KEY', 'PATH_LENGTH_EXCEEDED', 'INVALID_PURPOSE', 'CERT_UNTRUSTED',
  'CERT_REJECTED', 'SUBJECT_ISSUER_MISMATCH', 'AKID_SKID_MISMATCH', 'AKID_ISSUER_SERIAL_MISMATCH', 'KEYUSAGE_NO_CERTSIGN',
  'UNABLE_TO_GET_CRL_ISSUER', 'UNHANDLED_CRITICAL_EXTENSION', 'KEYUSAGE_NO_CRL_SIGN', 'UNHANDLED_CRITICAL_CRL_EXTENSION',
  'INVALID_NON_CA', 'PROXY_PATH_LENGTH_EXCEEDED', 'KEYUSAGE_NO_DIGITAL_SIGNATURE', 'PROXY_CERTIFICATES_NOT_ALLOWED',
  'INVALID_EXTENSION', 'INVALID_POLICY_EXTENSION', 'NO_EXPLICIT_POLICY', 'DIFFERENT_CRL_SCOPE', 'UNSUPPORTED_EXTENSION_FEATURE',
  'UNNESTED_RESOURCE', 'PERMITTED_VIOLATION', 'EXCLUDED_VIOLATION', 'SUBTREE_MINMAX', 'APPLICATION_VERIFICATION',
  'UNSUPPORTED_CONSTRAINT_TYPE', 'UNSUPPORTED_CONSTRAINT_SYNTAX', 'UNSUPPORTED_NAME_SYNTAX', 'CRL_PATH_VALIDATION_ERROR',
  'PATH_LOOP', 'SUITE_B_INVALID_VERSION', 'SUITE_B_INVALID_ALGORITHM', 'SUITE_B_INVALID_CURVE', 'SUITE_B_INVALID_SIGNATURE_ALGORITHM',
  'SUITE_B_LOS_NOT_ALLOWED', 'SUITE_B_CANNOT_SIGN_P_384_WITH_P_256', 'HOSTNAME_MISMATCH', 'EMAIL_MISMATCH', 'IP_ADDRESS_MISMATCH',
  'DANE_NO_MATCH', 'EE_KEY_TOO_SMALL', 'CA_KEY_TOO_SMALL', 'CA_MD_TOO_WEAK', 'INVALID_CALL', 'STORE_LOOKUP', 'NO_VALID_SCTS',
  'PROXY_SUBJECT_NAME_VIOLATION', 'OCSP_VERIFY_NEEDED', 'OCSP_VERIFY_FAILED', 'OCSP_CERT_UNKNOWN', 'UNSUPPORTED_SIGNATURE_ALGORITHM',
  'SIGNATURE_ALGORITHM_MISMATCH', 'SIGNATURE_ALGORITHM_INCONSISTENCY', 'INVALID_CA', 'PATHLEN_INVALID_FOR_NON_CA',
  'PATHLEN_WITHOUT_KU_KEY_CERT_SIGN', 'KU_KEY_CERT_SIGN_INVALID_FOR_NON_CA', 'ISSUER_NAME_EMPTY', 'SUBJECT_NAME_EMPTY',
  'MISSING_AUTHORITY_KEY_IDENTIFIER', 'MISSING_SUBJECT_KEY_IDENTIFIER', 'EMPTY_SUBJECT_ALT_NAME', 'EMPTY_SUBJECT_SAN_NOT_CRITICAL',
  'CA_BCONS_NOT_CRITICAL', 'AUTHORITY_KEY_IDENTIFIER_CRITICAL', 'SUBJECT_KEY_IDENTIFIER_CRITICAL', 'CA_CERT_MISSING_KEY_USAGE',
  'EXTENSIONS_REQUIRE_VERSION_3', 'EC_KEY_EXPLICIT_PARAMS'
]

/**
 * `openssl verify -x509_strict -purpose sslclient` (`-auth_level 1`: the security level a Node 20 server verifies
 * at, so that weak keys and digests get OpenSSL's own names), with `-crl_check_all -CRLfile` when the group has
 * CRLs: one run for the whole group. A leaf's verdict is the first error OpenSSL reports for it.
 */
async function opensslVerdicts (group: DifferentialGroup): Promise<Array<string | null>> {
  const dir = await mkdtemp(join(tmpdir(), 'mtls-differential-'))
  try {
    const file = (name: string): string => join(dir, name)
    await writeFile(file('ca.pem'), group.roots.map(der => toPem(der)).join(''))
    const args = ['verify', '-x509_strict', '-purpose', 'sslclient', '-auth_level', '1', '-CAfile', file('ca.pem')]
    const untrusted = group.cases.flatMap(testCase => testCase.intermediates)
    if (untrusted.length > 0) {
      await writeFile(file('untrusted.pem'), untrusted.map(der => toPem(der)).join(''))
      args.push('-untrusted', file('untrusted.pem'))
    }
    if (group.crls.length > 0) {
      await writeFile(file('crls.pem'), group.crls.map(der => toPem(der, 'X509 CRL')).join(''))
      args.push('-crl_check_all', '-CRLfile', file('crls.pem'))
    }
    await Promise.all(group.cases.map(async (testCase, index) => await writeFile(file(`leaf-${index}.pem`), toPem(testCase.leaf))))
    args.push(...group.cases.map((_, index) => file(`leaf-${index}.pem`)))
    const { stdout, stderr } = await new Promise<{ stdout: string, stderr: string }>(resolve => {
      execFile('openssl', args, { maxBuffer: 64 * 1024 * 1024 }, (_error, stdout, stderr) => resolve({ stdout, stderr }))
    })
    const accepted = new Set([...stdout.matchAll(/^(.*): OK$/gm)].map(match => match[1]))
    // Errors come on stderr, each certificate's before the line that ends it: "error <file>: verification failed".
    const refused = new Map<string, string>()
    let first: string | null = null
    for (const line of stderr.split('\n')) {
      const error = /^error (\d+) at \d+ depth lookup/.exec(line)
      if (error !== null) first ??= X509_V_ERRORS[Number(error[1])] ?? `X509_V_ERR ${error[1]}`
      const failed = /^error (.*): verification failed$/.exec(line)
      if (failed !== null) {
        refused.set(failed[1] as string, first ?? 'UNSPECIFIED')
        first = null
      }
    }
    return group.cases.map((_, index) => {
      const name = file(`leaf-${index}.pem`)
      return accepted.has(name) ? null : refused.get(name) ?? 'NOT_LOADED'
    })
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

// The TLS servers run in a worker thread, so that their side of each handshake (the verification being judged) and
// the clients' side share two cores, or get a fairer share of a busy machine. Messages: { id, open: tls options } is
// answered { id, port } or { id, error }; { id, close } closes that server.
const SERVERS = `
const { parentPort } = require('node:worker_threads')
const tls = require('node:tls')
const servers = new Map()
parentPort.on('message', ({ id, open, close }) => {
  if (close) {
    servers.get(id)?.close()
    servers.delete(id)
    return
  }
  let server
  try {
    server = tls.createServer({ ...open, requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.3' }, socket => {
      socket.on('error', () => {})
      socket.end(socket.authorized ? 'OK' : String(socket.authorizationError))
    })
  } catch (err) {
    parentPort.postMessage({ id, error: String(err) })
    return
  }
  server.on('tlsClientError', () => {})
  servers.set(id, server)
  server.listen(0, '127.0.0.1', () => parentPort.postMessage({ id, port: server.address().port }))
})
`

/** A worker thread that serves TLS for the groups of one `judge` call. */
class ServerThread {
  readonly #worker = new Worker(SERVERS, { eval: true })
  readonly #waiting = new Map<number, (answer: { port?: number, error?: string }) => void>()
  #next = 0

  constructor () {
    this.#worker.on('message', (answer: { id: number, port?: number, error?: string }) => {
      this.#waiting.get(answer.id)?.(answer)
      this.#waiting.delete(answer.id)
    })
  }

  /** A server with `options` (tls.createServer's, less what every judge server sets): its port and its id, or its error. */
  async open (options: tls.TlsOptions): Promise<{ id: number, port?: number, error?: string }> {
    const id = this.#next++
    const answer = new Promise<{ port?: number, error?: string }>(resolve => this.#waiting.set(id, resolve))
    this.#worker.postMessage({ id, open: options })
    return { id, ...await answer }
  }

  close (id: number): void {
    this.#worker.postMessage({ id, close: true })
  }

  async stop (): Promise<void> {
    await this.#worker.terminate()
  }
}

/** One TLS server for the group (in `servers`); each case connects with its chain and key, and the server answers with its verdict. */
async function handshakeVerdicts (group: DifferentialGroup, options: JudgeOptions, servers: ServerThread): Promise<Array<string | null>> {
  const server = await servers.open({
    cert: options.server.cert,
    key: options.server.key,
    ca: group.roots.map(der => toPem(der)),
    ...(group.crls.length === 0 ? {} : { crl: group.crls.map(der => toPem(der, 'X509 CRL')) })
  })
  // OpenSSL would not load the trust (a CRL it cannot read): it accepts no one.
  if (server.port === undefined) return group.cases.map(() => 'SERVER_REFUSED_TRUST')
  const port = server.port
  try {
    return await inPool(group.cases, options.concurrency ?? 8, async testCase => {
      const verdict = await handshake(port, testCase)
      // A handshake that ran out of time on a busy machine is asked again, not counted as a refusal.
      return verdict === TIMED_OUT ? await handshake(port, testCase) : verdict
    })
  } finally {
    servers.close(server.id)
  }
}

const TIMED_OUT = 'HANDSHAKE_FAILED: TIMEOUT'

// The client lowers only its own security level, so that it can present weak material; the server judges at its default.
async function handshake (port: number, testCase: DifferentialCase): Promise<string | null> {
  return await new Promise(resolve => {
    let socket: tls.TLSSocket
    try {
      socket = tls.connect({
        port,
        host: '127.0.0.1',
        rejectUnauthorized: false,
        minVersion: 'TLSv1.3',
        ciphers: 'DEFAULT@SECLEVEL=0',
        cert: [testCase.leaf, ...testCase.intermediates].map(der => toPem(der)).join(''),
        key: testCase.key.pem
      })
    } catch (err) {
      resolve(`CLIENT_CANNOT_LOAD: ${(err as Error).message}`)
      return
    }
    let answer = ''
    let failure: string | null = null
    socket.setEncoding('utf8')
    socket.on('data', chunk => { answer += chunk })
    socket.on('error', err => { failure ??= (err as NodeJS.ErrnoException).code ?? err.message })
    socket.setTimeout(hangLimit(60_000), () => {
      failure = 'TIMEOUT'
      socket.destroy()
    })
    socket.on('close', () => resolve(answer === 'OK' ? null : answer !== '' ? answer : `HANDSHAKE_FAILED: ${failure ?? 'closed'}`))
  })
}
