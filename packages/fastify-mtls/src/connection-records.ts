import type { TLSSocket } from 'node:tls'
import { Trust, peerCertificateDer, presentedCertificates, readCertificateFields, tlsAttributes, type CertificateFields, type ChainCertificate, type ChainRecord, type TelemetryAttributes, type TrustRefusal } from 'mtls-core/internal'

/**
 * What fastify-mtls knows of a TLS connection's client certificate, kept current: the one record of the
 * connection's verdict (`fastify.mtls.connection()`). OpenSSL judged the certificate at the handshake; fastify-mtls
 * adds its refusals since (a change of trust that withdrew it, a trust domain it does not belong to), and the
 * verdict ends with the certificate's chain and with the trust's CRLs.
 */
export interface MtlsConnection {
  /** The client's certificate (DER), `null` when it sent none. */
  readonly certificate: Buffer | null
  /** Whether the connection resumed a TLS session (OpenSSL did not verify the certificate again). */
  readonly resumed: boolean
  /** OpenSSL verified the certificate, nothing withdrew it since, and it and the trust's CRLs are current. */
  readonly verified: boolean
  /**
   * Why not, by OpenSSL's name for the verdict (`CERT_REVOKED`, `CERT_HAS_EXPIRED`, `UNABLE_TO_GET_ISSUER_CERT_LOCALLY`,
   * ...) or mtls-core's (`ERR_MTLS_TRUST_DOMAIN_UNTRUSTED`, `ERR_MTLS_CHAIN_NOT_RECORDED`); `null` while verified,
   * and when no certificate came.
   */
  readonly refusal: string | null
  /** Until when the verdict holds (ms since the epoch): the earliest `notAfter` of the certificate's chain as far as it is known. */
  readonly validUntil: number
}

/** A change of trust found a connection whose chain this process cannot tell: it is closed, and OpenSSL judges the reconnect. */
export const NOT_RECORDED: TrustRefusal = Object.freeze({
  code: 'ERR_MTLS_CHAIN_NOT_RECORDED',
  message: 'the trust changed, and the chain this connection was verified with is not on record here (a resumed session of another process): closed, so that the client reconnects and OpenSSL judges it'
})

const MAX_RECALLED = 10_000
const MAX_CHAINS_PER_CERTIFICATE = 4

/** One connection's record; read through `MtlsConnection`. */
export class ConnectionRecord implements MtlsConnection {
  readonly certificate: Buffer | null
  readonly resumed: boolean
  // Read through getters: what fastify-mtls hands out as an MtlsConnection cannot be written to, typed or not.
  #verified: boolean
  #refusal: string | null
  // The trust the verdict stands under: the one the connection was accepted under, then each it was judged against.
  #trust: Trust
  // The trust OpenSSL verified the certificate against (a resumed session's ticket was sealed with keys of it).
  readonly #verifiedUnder: Trust
  readonly #socket: TLSSocket
  readonly #recall: Map<string, ChainRecord[]>
  // OpenSSL's verdict at the handshake, and what fastify-mtls withdrew since (for good: a later trust does not restore it).
  readonly #opensslRefusal: string | null
  #withdrawn: string | null = null
  #fields: CertificateFields | null | undefined
  #chains: readonly ChainRecord[] | undefined
  #until: number | undefined
  #telemetry: TelemetryAttributes | undefined
  /** While a revocation lookup for the certificate is under way: what the connection's requests wait for. */
  held: Promise<void> | null = null

  constructor (socket: TLSSocket, acceptedUnder: Trust, recall: Map<string, ChainRecord[]>) {
    this.#socket = socket
    this.#recall = recall
    this.#trust = acceptedUnder
    this.#verifiedUnder = acceptedUnder
    this.resumed = socket.isSessionReused()
    this.certificate = peerCertificateDer(socket)
    // Node 20 calls a resumed session without a certificate authorized: there was nothing to verify.
    const authorized = socket.authorized && this.certificate !== null
    this.#opensslRefusal = authorized || this.certificate === null ? null : String(socket.authorizationError || 'ERR_MTLS_CERTIFICATE_NOT_VERIFIED')
    this.#verified = authorized
    this.#refusal = this.#opensslRefusal
  }

  get verified (): boolean {
    return this.#verified
  }

  get refusal (): string | null {
    return this.#refusal
  }

  /** The certificate's fields (read once per content by mtls-core); `null` without a certificate, or for bytes that are not one. */
  get fields (): CertificateFields | null {
    if (this.#fields === undefined) {
      try {
        this.#fields = this.certificate === null ? null : readCertificateFields(this.certificate)
      } catch {
        this.#fields = null
      }
    }
    return this.#fields
  }

  /** The connection's OpenTelemetry `tls.*` attributes, read the first time a recording span asks (see otel.ts). */
  get telemetry (): TelemetryAttributes {
    this.#telemetry ??= tlsAttributes(this.#socket, this.certificate, 'client', this.fields)
    return this.#telemetry
  }

  get validUntil (): number {
    this.settle()
    return this.#until as number
  }

  /**
   * Finds until when the verdict holds, right after the handshake: the chain the peer sent is read (and recalled for
   * the sessions this connection makes) only when the trust does not hold the CAs above the certificate. `false` for a
   * full handshake whose chain cannot be told (OpenSSL built one this process cannot rebuild): nothing would bound
   * it but its certificate's own expiry. A resumed session shows no chain: its certificate's expiry bounds it then.
   */
  settle (): boolean {
    if (this.#until !== undefined) return true
    if (this.certificate === null || this.fields === null) {
      this.#until = Infinity // nothing verified: nothing to expire
      return true
    }
    // The CAs above it as the trust holds them (one signature check per certificate and trust), else the chain itself.
    const fromTrust = this.#chains === undefined ? this.#verifiedUnder.chainFromTrust(this.certificate) : null
    const chains = fromTrust === null ? this.chains() : [fromTrust]
    this.#until = chains.length === 0 ? this.fields.notAfter.getTime() : earliest(chains)
    return chains.length > 0 || this.resumed
  }

  /**
   * The chain OpenSSL verified, read once: from what the peer sent on a full handshake (Node shows it until the
   * connection ends); for a resumed session, each chain this process recorded for its certificate (which of them its
   * full handshake had is not known: every one is judged); else the CAs of the trust it was verified under that
   * signed it. Empty when none of these can tell.
   */
  chains (): readonly ChainRecord[] {
    if (this.#chains === undefined) {
      const certificate = this.certificate
      let chains: readonly ChainRecord[] = []
      if (certificate !== null) {
        const leafKey = certificate.toString('latin1')
        if (!this.resumed) {
          // The leaf as the session holds it, and what Node shows above it.
          const chain = this.#verifiedUnder.presentedChain([certificate, ...presentedCertificates(this.#socket).slice(1)])
          if (chain !== null) chains = [remember(this.#recall, leafKey, chain)]
        } else {
          chains = this.#recall.get(leafKey) ?? []
        }
        if (chains.length === 0) {
          const fromTrust = this.#verifiedUnder.chainFromTrust(certificate)
          if (fromTrust !== null) chains = [fromTrust]
        }
      }
      this.#chains = chains
      // The chains themselves, once read, say until when (the certificate's expiry included).
      if (chains.length > 0 && this.#until !== undefined) this.#until = earliest(chains)
    }
    return this.#chains
  }

  /**
   * Judges the verdict under `trust`, by what changed since the trust it stands under (the one code path for a change
   * of trust: at the handshake, on a reload, on a request): a refusal withdraws the certificate for good. Returns the
   * refusal, or `null`. A certificate OpenSSL did not verify, or already withdrawn, has nothing left to lose.
   */
  judge (trust: Trust, now: number): TrustRefusal | null {
    if (trust === this.#trust) return null
    const previous = this.#trust
    const certificate = this.certificate
    this.#trust = trust
    if (this.#withdrawn !== null || this.#opensslRefusal !== null || certificate === null) return null
    const change = trust.changeSince(previous)
    if (change.none) return null
    // Only the CRLs of the certificate's own issuer changed: the certificate alone decides, when the trust holds its issuer.
    let verdict: TrustRefusal | null | undefined
    const issuerKey = Trust.issuerKey(certificate)
    if (!change.whole && [...change.crlIssuers].every(issuer => issuer === issuerKey)) verdict = trust.judgeLeaf(certificate, now)
    if (verdict === undefined) {
      const chains = this.chains()
      verdict = chains.length === 0 ? NOT_RECORDED : firstRefusal(chains, chain => trust.judge(chain, now))
    }
    if (verdict !== null) this.withdraw(verdict.code)
    return verdict
  }

  /** Withdraws the certificate: fastify-mtls refused it after OpenSSL let it through. */
  withdraw (code: string): void {
    this.#withdrawn ??= code
    this.#verified = false
    this.#refusal = this.#withdrawn
  }

  /** Brings `verified` and `refusal` up to date: judged under the trust in force, its chain current, the trust's CRLs current. */
  refresh (trust: Trust, now: number): void {
    this.judge(trust, now)
    if (this.#withdrawn !== null || this.#opensslRefusal !== null || this.certificate === null) return
    const expired = now > this.validUntil ? 'CERT_HAS_EXPIRED' : now > trust.freshUntil ? 'CRL_HAS_EXPIRED' : null
    this.#verified = expired === null
    this.#refusal = expired
  }

  get socket (): TLSSocket {
    return this.#socket
  }
}

/**
 * The records of one plugin's connections: attached to each TLS socket under a key of this plugin (so an HTTP/2
 * stream's socket proxy, which forwards property reads to the TLS socket, finds it too), the open verified ones
 * tracked for a change of trust, and the chains full handshakes showed, recalled for the sessions they made.
 */
export class ConnectionRecords {
  readonly #key = Symbol('fastify-mtls.connection')
  readonly #open = new Set<ConnectionRecord>()
  readonly #recall = new Map<string, ChainRecord[]>()
  #sweepAt = 1024

  /** A record for a connection whose handshake just ended, accepted under `trust`. */
  open (socket: TLSSocket, acceptedUnder: Trust): ConnectionRecord {
    const record = new ConnectionRecord(socket, acceptedUnder, this.#recall)
    Object.defineProperty(socket, this.#key, { value: record, configurable: true })
    return record
  }

  /** The record of the TLS connection behind `socket` (itself, or the TLS socket an HTTP/2 proxy stands for), or `null`. */
  of (socket: object | null | undefined): ConnectionRecord | null {
    if (socket === null || socket === undefined) return null
    try {
      return ((socket as Record<symbol, ConnectionRecord | undefined>)[this.#key]) ?? null
    } catch {
      return null // an HTTP/2 proxy whose session has let its socket go
    }
  }

  /** Tracks a verified connection: a change of trust judges it. No listener per connection: closed ones are swept out as the set grows. */
  track (record: ConnectionRecord): void {
    this.#open.add(record)
    if (this.#open.size < this.#sweepAt) return
    this.#sweep()
    this.#sweepAt = Math.max(1024, 2 * this.#open.size)
  }

  /** Judges every open verified connection under `trust`; calls `refused` for each that it withdraws. */
  judgeAll (trust: Trust, now: number, refused: (record: ConnectionRecord, refusal: TrustRefusal) => void): void {
    this.#sweep()
    for (const record of this.#open) {
      const refusal = record.judge(trust, now)
      if (refusal !== null) {
        this.#open.delete(record)
        refused(record, refusal)
      }
    }
  }

  /** Judges every open verified connection with `judge`; calls `refused` for each it gives a verdict against (`judge` withdraws nothing itself). */
  judgeWith<V> (judge: (record: ConnectionRecord) => V | null, refused: (record: ConnectionRecord, verdict: V) => void): void {
    this.#sweep()
    for (const record of this.#open) {
      if (!record.verified) continue
      const verdict = judge(record)
      if (verdict !== null) {
        this.#open.delete(record)
        refused(record, verdict)
      }
    }
  }

  #sweep (): void {
    for (const record of this.#open) if (record.socket.destroyed) this.#open.delete(record)
  }
}

// Recalls a chain for the sessions its full handshake made, beside the other chains the same certificate came with
// (a client may send another copy of a CA each time): a few per certificate, the newest kept. Returns the chain.
function remember (recall: Map<string, ChainRecord[]>, leaf: string, chain: ChainRecord): ChainRecord {
  const same = (a: ChainRecord): boolean => a.certificates.length === chain.certificates.length && a.certificates.every((c, i) => c.der.equals((chain.certificates[i] as ChainCertificate).der))
  const chains = (recall.get(leaf) ?? []).filter(other => !same(other))
  recall.delete(leaf)
  recall.set(leaf, [...chains.slice(-(MAX_CHAINS_PER_CERTIFICATE - 1)), chain])
  if (recall.size > MAX_RECALLED) recall.delete(recall.keys().next().value as string)
  return chain
}

function earliest (chains: readonly ChainRecord[]): number {
  return Math.min(...chains.map(chain => chain.until))
}

/** The first refusal `judge` gives any of the chains, or `null`. */
export function firstRefusal (chains: readonly ChainRecord[], judge: (chain: ChainRecord) => TrustRefusal | null): TrustRefusal | null {
  for (const chain of chains) {
    const refusal = judge(chain)
    if (refusal !== null) return refusal
  }
  return null
}
