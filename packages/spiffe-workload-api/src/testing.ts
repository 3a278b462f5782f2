// A Workload API server for tests without SPIRE (`spiffe-workload-api/testing`): the package's own proto served by
// @grpc/grpc-js over a real Unix socket (or 127.0.0.1), with the SVIDs and bundles the test sets, and the
// behaviour a conforming agent shows: the security header required, pushes to open streams, streams ended or
// failed with a status on demand.
import { createPrivateKey, createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as grpc from '@grpc/grpc-js'
import { SignJWT } from 'jose'
import { readPemBlocks } from 'mtls-core/internal'
import { toJwtBundles, type JwtBundles } from './jwt-bundles.js'
import { validateJwtSvid } from './jwt-validate.js'
import {
  SECURITY_HEADER, toRawStruct, workloadServiceDefinition, type RawJwtBundlesResponse, type RawJwtSvidRequest, type RawJwtSvidResponse,
  type RawValidateJwtSvidRequest, type RawValidateJwtSvidResponse, type RawX509BundlesResponse, type RawX509Svid, type RawX509SvidResponse
} from './proto.js'

export type { RawJwtBundlesResponse, RawX509BundlesResponse, RawX509Svid, RawX509SvidResponse } from './proto.js'

/** DER of each PEM certificate (or CRL) in `pem`, in order. */
export function pemToDer (pem: string, label = 'CERTIFICATE'): Buffer[] {
  return readPemBlocks(pem).filter(block => block.label === label).map(block => Buffer.from(block.der))
}

/**
 * An X509SVID message from PEM, as mtls-pki issues it: `chain` (leaf first), `key` (any PEM private key, sent as
 * PKCS#8 DER), `ca` (the trust domain's bundle).
 */
export function svidMessage (spiffeId: string, issued: { readonly chain: string, readonly key: string, readonly ca: string }, hint = ''): RawX509Svid {
  return {
    spiffeId,
    x509Svid: Buffer.concat(pemToDer(issued.chain)),
    x509SvidKey: createPrivateKey(issued.key).export({ type: 'pkcs8', format: 'der' }),
    bundle: Buffer.concat(pemToDer(issued.ca)),
    hint
  }
}

/** A JWT-SVID the test agent issues: signed with `key` under `kid`, for the audience each request asks. */
export interface TestJwtSvid {
  spiffeId: string
  hint?: string
  /** The signing key (private). */
  key: KeyObject
  kid: string
  /** Default: from the key (ES256/ES384/ES512 by curve, RS256 for RSA, PS256 for RSA-PSS). */
  alg?: string
  /** Default: 300. */
  lifetimeSeconds?: number
}

/** The JWS algorithm that fits a signing key. */
export function algorithmOf (key: KeyObject): string {
  if (key.asymmetricKeyType === 'rsa') return 'RS256'
  if (key.asymmetricKeyType === 'rsa-pss') return 'PS256'
  const curve = key.asymmetricKeyDetails?.namedCurve
  if (curve === 'prime256v1') return 'ES256'
  if (curve === 'secp384r1') return 'ES384'
  if (curve === 'secp521r1') return 'ES512'
  throw new Error(`no JWT-SVID algorithm for a ${key.asymmetricKeyType ?? 'secret'} key`)
}

/** A JWKS document (JSON bytes, as FetchJWTBundles carries it) of the public halves of `keys`, each `use: jwt-svid`. */
export function jwksOf (keys: ReadonlyArray<{ key: KeyObject, kid: string }>): Buffer {
  return Buffer.from(JSON.stringify({
    keys: keys.map(({ key, kid }): JsonWebKey => ({ ...createPublicKey(key).export({ format: 'jwk' }), kid, use: 'jwt-svid' }))
  }))
}

/** A gRPC status as an Error, as grpc-js takes it from a handler. */
function statusError (code: grpc.status, details: string): Error & { code: grpc.status, details: string } {
  return Object.assign(new Error(details), { code, details })
}

export interface TestWorkloadApiOptions {
  /** Listen on 127.0.0.1 and a free port instead of a Unix socket. Default: `false`. */
  tcp?: boolean
  /** The Unix socket's path. Default: `agent.sock` in a new temporary directory, removed by `close()`. */
  socketPath?: string
}

type StreamCall<T> = grpc.ServerWritableStream<object, T>

/** A Workload API server for tests. `endpoint` is what `createX509Source({ endpoint })` or `SPIFFE_ENDPOINT_SOCKET` takes. */
export class TestWorkloadApi {
  /** `unix:///…/agent.sock` or `tcp://127.0.0.1:PORT`. */
  readonly endpoint: string
  /** Calls refused for want of the security header. */
  refusedWithoutHeader = 0
  /** Calls accepted (header present). */
  accepted = 0
  #address: string
  #server: grpc.Server | null = null
  #x509: RawX509SvidResponse | null = null
  #bundles: RawX509BundlesResponse | null = null
  #deny: { code: grpc.status, details: string } | null = null
  /** JWT-SVIDs signed and sent. */
  jwtIssued = 0
  #jwtSvids: TestJwtSvid[] = []
  #jwtBundles: RawJwtBundlesResponse | null = null
  readonly #x509Calls = new Set<StreamCall<RawX509SvidResponse>>()
  readonly #bundleCalls = new Set<StreamCall<RawX509BundlesResponse>>()
  readonly #jwtBundleCalls = new Set<StreamCall<RawJwtBundlesResponse>>()
  readonly #socketPath: string | null
  readonly #tempDir: string | null

  private constructor (address: string, endpoint: string, socketPath: string | null, tempDir: string | null) {
    this.#address = address
    this.endpoint = endpoint
    this.#socketPath = socketPath
    this.#tempDir = tempDir
  }

  /** Starts a server; `close()` stops it and removes the temporary directory it made. */
  static async start (options: TestWorkloadApiOptions = {}): Promise<TestWorkloadApi> {
    if (options.tcp === true) return await new TestWorkloadApi('127.0.0.1:0', '', null, null).listen()
    const tempDir = options.socketPath === undefined ? await mkdtemp(join(tmpdir(), 'workload-api-')) : null
    const path = options.socketPath ?? join(tempDir as string, 'agent.sock')
    return await new TestWorkloadApi(`unix:${path}`, `unix://${path}`, path, tempDir).listen()
  }

  /** Listens (again, after `stop()`: an agent that comes back), on the same socket path or port. */
  async listen (): Promise<this> {
    if (this.#server !== null) return this
    if (this.#socketPath !== null) await rm(this.#socketPath, { force: true })
    const server = new grpc.Server()
    server.addService(workloadServiceDefinition(), {
      FetchX509SVID: (call: StreamCall<RawX509SvidResponse>) => { this.#open(call, this.#x509Calls, this.#x509) },
      FetchX509Bundles: (call: StreamCall<RawX509BundlesResponse>) => { this.#open(call, this.#bundleCalls, this.#bundles) },
      FetchJWTSVID: (call: grpc.ServerUnaryCall<RawJwtSvidRequest, RawJwtSvidResponse>, callback: grpc.sendUnaryData<RawJwtSvidResponse>) => {
        this.#fetchJwtSvid(call).then(response => callback(null, response), (status: grpc.StatusObject) => callback(status))
      },
      FetchJWTBundles: (call: StreamCall<RawJwtBundlesResponse>) => { this.#open(call, this.#jwtBundleCalls, this.#jwtBundles) },
      ValidateJWTSVID: (call: grpc.ServerUnaryCall<RawValidateJwtSvidRequest, RawValidateJwtSvidResponse>, callback: grpc.sendUnaryData<RawValidateJwtSvidResponse>) => {
        this.#validateJwtSvid(call).then(response => callback(null, response), (status: grpc.StatusObject) => callback(status))
      }
    })
    const port = await new Promise<number>((resolve, reject) => {
      server.bindAsync(this.#address, grpc.ServerCredentials.createInsecure(), (err, bound) => (err === null ? resolve(bound) : reject(err)))
    })
    this.#server = server
    if (this.#socketPath === null) {
      // Bound once to a free port, then to the same one when it comes back.
      this.#address = `127.0.0.1:${port}`
      ;(this as { endpoint: string }).endpoint = `tcp://127.0.0.1:${port}`
    }
    return this
  }

  /** The status a call is refused with before anything else: no security header, or the denial set. */
  #refusal (metadata: grpc.Metadata): Error | null {
    if (metadata.get(SECURITY_HEADER)[0] !== 'true') {
      this.refusedWithoutHeader += 1
      return statusError(grpc.status.INVALID_ARGUMENT, 'security header missing from request')
    }
    if (this.#deny !== null) return statusError(this.#deny.code, this.#deny.details)
    this.accepted += 1
    return null
  }

  async #fetchJwtSvid (call: grpc.ServerUnaryCall<RawJwtSvidRequest, RawJwtSvidResponse>): Promise<RawJwtSvidResponse> {
    const refusal = this.#refusal(call.metadata)
    if (refusal !== null) throw refusal
    const { audience, spiffeId } = call.request
    if (audience.length === 0 || audience.some(aud => aud === '')) throw statusError(grpc.status.INVALID_ARGUMENT, 'audience must be specified')
    const chosen = this.#jwtSvids.filter(svid => spiffeId === '' || svid.spiffeId === spiffeId)
    if (chosen.length === 0) throw statusError(grpc.status.PERMISSION_DENIED, spiffeId === '' ? 'no identity issued' : `no identity issued for ${spiffeId}`)
    const now = Math.floor(Date.now() / 1000)
    const svids = await Promise.all(chosen.map(async svid => ({
      spiffeId: svid.spiffeId,
      hint: svid.hint ?? '',
      svid: await new SignJWT({})
        .setProtectedHeader({ alg: svid.alg ?? algorithmOf(svid.key), kid: svid.kid, typ: 'JWT' })
        .setSubject(svid.spiffeId)
        .setAudience(audience.length === 1 ? audience[0]! : audience)
        .setIssuedAt(now)
        .setExpirationTime(now + (svid.lifetimeSeconds ?? 300))
        .sign(svid.key)
    })))
    this.jwtIssued += svids.length
    return { svids }
  }

  // As an agent does: against the JWT bundles it holds; a token it refuses is InvalidArgument.
  async #validateJwtSvid (call: grpc.ServerUnaryCall<RawValidateJwtSvidRequest, RawValidateJwtSvidResponse>): Promise<RawValidateJwtSvidResponse> {
    const refusal = this.#refusal(call.metadata)
    if (refusal !== null) throw refusal
    const { audience, svid } = call.request
    if (audience === '') throw statusError(grpc.status.INVALID_ARGUMENT, 'audience must be specified')
    if (svid === '') throw statusError(grpc.status.INVALID_ARGUMENT, 'svid must be specified')
    let bundles: JwtBundles
    try {
      bundles = toJwtBundles(this.#jwtBundles ?? { bundles: {} })
    } catch (err) {
      throw statusError(grpc.status.INTERNAL, (err as Error).message)
    }
    try {
      const validated = await validateJwtSvid(svid, { audience, bundles, clockToleranceSec: 0 })
      return { spiffeId: validated.spiffeId, claims: toRawStruct(validated.claims as Record<string, unknown>) }
    } catch (err) {
      throw statusError(grpc.status.INVALID_ARGUMENT, (err as Error).message)
    }
  }

  #open<T> (call: StreamCall<T>, calls: Set<StreamCall<T>>, current: T | null): void {
    const refusal = this.#refusal(call.metadata)
    if (refusal !== null) {
      call.emit('error', refusal)
      return
    }
    calls.add(call)
    call.on('cancelled', () => calls.delete(call))
    call.on('close', () => calls.delete(call))
    if (current !== null) call.write(current)
  }

  /** Sets the X509SVIDResponse: sent to every open FetchX509SVID stream now, and to each new one. */
  setX509 (response: Partial<RawX509SvidResponse> & { svids: RawX509Svid[] }): void {
    this.#x509 = { crl: [], federatedBundles: {}, ...response }
    for (const call of this.#x509Calls) call.write(this.#x509)
  }

  /** Sets the X509BundlesResponse: sent to every open FetchX509Bundles stream now, and to each new one. */
  setBundles (response: Partial<RawX509BundlesResponse>): void {
    this.#bundles = { crl: [], bundles: {}, ...response }
    for (const call of this.#bundleCalls) call.write(this.#bundles)
  }

  /** The JWT-SVIDs FetchJWTSVID issues, signed anew for each request's audience; the first is the default. */
  setJwtSvids (svids: readonly TestJwtSvid[]): void {
    this.#jwtSvids = [...svids]
  }

  /** Sets the JWTBundlesResponse (JWKS JSON bytes, or a JWKS object, by trust domain): sent to every open FetchJWTBundles stream now, and to each new one. */
  setJwtBundles (bundles: Record<string, Buffer | { keys: readonly object[] }>): void {
    this.#jwtBundles = {
      bundles: Object.fromEntries(Object.entries(bundles).map(([td, jwks]) => [td, Buffer.isBuffer(jwks) ? jwks : Buffer.from(JSON.stringify(jwks))]))
    }
    for (const call of this.#jwtBundleCalls) call.write(this.#jwtBundles)
  }

  /** Fails the open streams and every new call with this status (`PermissionDenied`, …); `null` serves again. */
  deny (status: { code: grpc.status, details: string } | null): void {
    this.#deny = status
    if (status === null) return
    for (const call of this.#streams()) call.emit('error', status)
    this.#clearStreams()
  }

  /** Ends every open stream with status OK. */
  endStreams (): void {
    for (const call of this.#streams()) call.end()
    this.#clearStreams()
  }

  get openStreams (): number {
    return this.#x509Calls.size + this.#bundleCalls.size + this.#jwtBundleCalls.size
  }

  #streams (): Array<StreamCall<unknown>> {
    return [...this.#x509Calls, ...this.#bundleCalls, ...this.#jwtBundleCalls] as Array<StreamCall<unknown>>
  }

  #clearStreams (): void {
    this.#x509Calls.clear()
    this.#bundleCalls.clear()
    this.#jwtBundleCalls.clear()
  }

  /** The address in gRPC's naming syntax (`unix:/…`, `127.0.0.1:PORT`), for a gRPC client of your own. */
  get address (): string {
    return this.#address
  }

  /** Stops at once, as an agent that goes away (open streams see Unavailable); `listen()` brings it back. */
  stop (): void {
    this.#server?.forceShutdown()
    this.#server = null
    this.#clearStreams()
  }

  /** Stops and removes the temporary directory of the socket. */
  async close (): Promise<void> {
    this.stop()
    if (this.#tempDir !== null) await rm(this.#tempDir, { recursive: true, force: true })
  }
}
