// The server's stapled OCSP response, checked after the handshake OpenSSL verified: a staple present is verified
// (mtls-core's verifyOcspResponse) and must say good; a server that staples nothing is refused when the agent
// requires a staple or the certificate demands one (must-staple). Revocation only adds refusals to OpenSSL's verdict.
// mtls-core/ocsp (the ASN.1 schemas) loads on the first connection that needs it, not with undici-mtls.
import { X509Certificate } from 'node:crypto'
import type { TLSSocket } from 'node:tls'
import type { Material } from 'mtls-core'
import type { OcspStatus } from 'mtls-core/ocsp'
import { describeThrown } from 'mtls-core/internal'
import { MtlsClientError } from './errors.js'

/** `'off'`: no staple asked for; `'prefer'`: asked for, checked when present; `'require'`: a server must staple one. */
export type OcspMode = 'off' | 'prefer' | 'require'
export const OCSP_MODES: readonly OcspMode[] = ['off', 'prefer', 'require']

/** The last staple a server presented, as `status().ocsp.lastStaple` shows it. */
export interface ServerStaple {
  /** The origin of the connection (`https://host:port`). */
  readonly origin: string
  readonly status: OcspStatus['status']
  readonly thisUpdate: Date
  readonly nextUpdate: Date
  /** When the connection got it. */
  readonly at: Date
}

/** `status().ocsp`. */
export interface AgentOcspStatus {
  readonly mode: OcspMode
  /** The last staple verified (good, revoked or unknown), or `null` before any. */
  readonly lastStaple: ServerStaple | null
  /** The latest OCSP refusal (kept after later successes): its origin, code, message and time; `null` before any. */
  readonly lastError: { readonly origin: string, readonly code: string, readonly message: string, readonly at: Date } | null
}

/** A connection's verdict: `error` to refuse it, else until when its staple holds (`Infinity` without one). */
export interface StapleVerdict {
  readonly error: MtlsClientError | null
  readonly until: number
}

// mtls-core's default: OpenSSL's -validity_period.
const SKEW_MS = 5 * 60_000
// A staple verified for a certificate is trusted again, for the same bytes, this long: within the skew already allowed
// on the responder certificate's validity, which is only checked when a staple is verified.
const REUSE_MS = SKEW_MS
const MAX_VERIFIED = 100
// Certificates a server sent above its own that are looked at for its issuer.
const MAX_SENT = 8
// id-pe-tlsfeature (1.3.6.1.5.5.7.1.24), DER-encoded: a certificate without these bytes has no TLS feature extension.
const TLS_FEATURE_OID = Buffer.from('06082b06010505070118', 'hex')
const ACCEPTED: StapleVerdict = Object.freeze({ error: null, until: Infinity })

let ocspModule: Promise<typeof import('mtls-core/ocsp')> | null = null
const loadOcsp = async (): Promise<typeof import('mtls-core/ocsp')> => await (ocspModule ??= import('mtls-core/ocsp'))

/** The OCSP checks of one agent's connections, and what `status().ocsp` reports. */
export class StapleChecker {
  readonly mode: OcspMode
  #lastStaple: ServerStaple | null = null
  #lastError: AgentOcspStatus['lastError'] = null
  #ca: readonly string[] = []
  #anchors: X509Certificate[] | null = null
  // Staples verified, by the certificate's SHA-256 fingerprint: a server sends the same bytes to every connection.
  readonly #verified = new Map<string, { staple: Buffer, status: OcspStatus, until: number }>()

  constructor (mode: OcspMode, material: Material) {
    this.mode = mode
    this.use(material)
  }

  /** The trusted CAs, where the issuer of a server certificate sent without its chain is looked for. */
  use (material: Material): void {
    if (material.ca === this.#ca) return
    this.#ca = material.ca
    this.#anchors = null
  }

  /** Asks for a staple on `socket`'s handshake (the response arrives before `secureConnect`); gives what was stapled. */
  listen (socket: TLSSocket): () => Buffer | null {
    let staple: Buffer | null = null
    // Node gives the response's bytes, or null when the server stapled nothing (an empty one is judged: malformed).
    if (this.mode !== 'off') socket.once('OCSPResponse', (body: Buffer | null) => { staple = body })
    return () => staple
  }

  status (): AgentOcspStatus {
    return { mode: this.mode, lastStaple: this.#lastStaple, lastError: this.#lastError }
  }

  /** The verdict on a new connection's server `certificate` and its `staple`; synchronous when nothing needs mtls-core/ocsp. */
  check (certificate: X509Certificate, staple: Buffer | null, origin: string): StapleVerdict | Promise<StapleVerdict> {
    if (staple === null) {
      if (this.mode !== 'require' && !certificate.raw.includes(TLS_FEATURE_OID)) return ACCEPTED
      return this.#withoutStaple(certificate, origin)
    }
    return this.#verify(certificate, staple, origin)
  }

  async #withoutStaple (certificate: X509Certificate, origin: string): Promise<StapleVerdict> {
    let demanded = this.mode === 'require' ? 'the agent requires one (ocsp: \'require\')' : null
    if (demanded === null) {
      try {
        if ((await loadOcsp()).revocationPointsOf(certificate.raw).mustStaple) demanded = 'its certificate demands one (TLS feature status_request, must-staple)'
      } catch (err) {
        demanded = `its certificate may demand one, and its TLS feature extension cannot be read (${describeThrown(err)})`
      }
    }
    if (demanded === null) return ACCEPTED
    const off = this.mode === 'off' ? '; ocsp is \'off\', so none was asked for: a must-staple server needs ocsp \'prefer\' or \'require\'' : ''
    return this.#refuse(new MtlsClientError('ERR_MTLS_OCSP_STAPLE_MISSING', `${origin}: the server stapled no OCSP response, and ${demanded}${off}`), origin)
  }

  async #verify (certificate: X509Certificate, staple: Buffer, origin: string): Promise<StapleVerdict> {
    const now = Date.now()
    let status: OcspStatus
    const known = this.#verified.get(certificate.fingerprint256)
    if (known !== undefined && known.until > now && known.staple.equals(staple)) {
      status = known.status
    } else {
      try {
        const { verifyOcspResponse } = await loadOcsp()
        const issuer = this.#issuerOf(certificate)
        if (issuer === null) return this.#refuse(invalid(origin, 'the issuer of the server certificate is neither in the chain it sent nor among the trusted CAs'), origin)
        status = verifyOcspResponse(staple, { certificate: certificate.raw, issuer: issuer.raw, now, skewMs: SKEW_MS })
      } catch (err) {
        return this.#refuse(invalid(origin, describeThrown(err), err), origin)
      }
      if (this.#verified.size >= MAX_VERIFIED) this.#verified.delete(this.#verified.keys().next().value as string)
      // Past its nextUpdate (with the skew) a staple is verified again, and refused as expired.
      this.#verified.set(certificate.fingerprint256, { staple: Buffer.from(staple), status, until: Math.min(now + REUSE_MS, status.nextUpdate.getTime() + SKEW_MS) })
    }
    this.#lastStaple = Object.freeze({ origin, status: status.status, thisUpdate: status.thisUpdate, nextUpdate: status.nextUpdate, at: new Date(now) })
    if (status.status === 'good') return { error: null, until: status.nextUpdate.getTime() }
    if (status.status === 'unknown') return this.#refuse(invalid(origin, 'its status is unknown: the responder does not know the certificate'), origin)
    const reason = status.reason === undefined ? '' : ` (${status.reason})`
    return this.#refuse(new MtlsClientError('ERR_MTLS_SERVER_CERT_REVOKED', `${origin}: the server certificate is revoked${reason} since ${(status.revokedAt as Date).toISOString()}, says its stapled OCSP response`), origin)
  }

  // The certificate that signed the server's: one it sent (Node links them by position only, unchecked, and a chain
  // may come out of order), else a trusted CA. Its signature on the server certificate is checked: a server could
  // send any certificate named like its CA, with a key of its own that signs a "good" response.
  #issuerOf (certificate: X509Certificate): X509Certificate | null {
    this.#anchors ??= this.#ca.map(pem => new X509Certificate(pem))
    const sent: X509Certificate[] = []
    for (let next = certificate.issuerCertificate; next !== undefined && sent.length < MAX_SENT && !sent.includes(next); next = next.issuerCertificate) sent.push(next)
    for (const candidate of [...sent, ...this.#anchors]) {
      if (certificate.checkIssued(candidate) && certificate.verify(candidate.publicKey)) return candidate
    }
    return null
  }

  #refuse (error: MtlsClientError, origin: string): StapleVerdict {
    this.#lastError = Object.freeze({ origin, code: error.code, message: error.message, at: new Date() })
    return { error, until: 0 }
  }
}

// `cause`: mtls-core's OcspError (its `check` names what failed), whose message says it all.
function invalid (origin: string, what: string, cause?: unknown): MtlsClientError {
  const message = cause === undefined ? `OCSP response refused: ${what}` : what
  return new MtlsClientError('ERR_MTLS_OCSP_INVALID', `${origin}: the server's staple: ${message}`, cause === undefined ? {} : { cause })
}

/** `ocsp`'s problem, or `null` when it is one of the modes (or left out). */
export function ocspModeProblem (mode: unknown): string | null {
  return mode === undefined || OCSP_MODES.includes(mode as OcspMode) ? null : `ocsp must be 'off', 'prefer' or 'require'; got ${JSON.stringify(mode)}`
}
