// A Workload API server for tests without SPIRE (`spiffe-workload-api/testing`): the package's own proto served by
// @grpc/grpc-js over a real Unix socket (or 127.0.0.1), with the SVIDs and bundles the test sets, and the
// behaviour a conforming agent shows: the security header required, pushes to open streams, streams ended or
// failed with a status on demand.
import { createPrivateKey } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as grpc from '@grpc/grpc-js'
import { readPemBlocks } from 'mtls-core/internal'
import { SECURITY_HEADER, workloadServiceDefinition, type RawX509BundlesResponse, type RawX509Svid, type RawX509SvidResponse } from './proto.js'

export type { RawX509BundlesResponse, RawX509Svid, RawX509SvidResponse } from './proto.js'

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
  readonly #x509Calls = new Set<StreamCall<RawX509SvidResponse>>()
  readonly #bundleCalls = new Set<StreamCall<RawX509BundlesResponse>>()
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
      FetchJWTSVID: (_call: unknown, callback: grpc.sendUnaryData<object>) => callback({ code: grpc.status.UNIMPLEMENTED, details: 'JWT-SVIDs are not served by this test server' }),
      FetchJWTBundles: (call: StreamCall<object>) => call.emit('error', { code: grpc.status.UNIMPLEMENTED, details: 'JWT-SVIDs are not served by this test server' }),
      ValidateJWTSVID: (_call: unknown, callback: grpc.sendUnaryData<object>) => callback({ code: grpc.status.UNIMPLEMENTED, details: 'JWT-SVIDs are not served by this test server' })
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

  #open<T> (call: StreamCall<T>, calls: Set<StreamCall<T>>, current: T | null): void {
    if (call.metadata.get(SECURITY_HEADER)[0] !== 'true') {
      this.refusedWithoutHeader += 1
      call.emit('error', { code: grpc.status.INVALID_ARGUMENT, details: 'security header missing from request' })
      return
    }
    if (this.#deny !== null) {
      call.emit('error', this.#deny)
      return
    }
    this.accepted += 1
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

  /** Fails the open streams and every new call with this status (`PermissionDenied`, …); `null` serves again. */
  deny (status: { code: grpc.status, details: string } | null): void {
    this.#deny = status
    if (status === null) return
    for (const call of [...this.#x509Calls, ...this.#bundleCalls]) call.emit('error', status)
    this.#x509Calls.clear()
    this.#bundleCalls.clear()
  }

  /** Ends every open stream with status OK. */
  endStreams (): void {
    for (const call of [...this.#x509Calls, ...this.#bundleCalls]) call.end()
    this.#x509Calls.clear()
    this.#bundleCalls.clear()
  }

  get openStreams (): number {
    return this.#x509Calls.size + this.#bundleCalls.size
  }

  /** The address in gRPC's naming syntax (`unix:/…`, `127.0.0.1:PORT`), for a gRPC client of your own. */
  get address (): string {
    return this.#address
  }

  /** Stops at once, as an agent that goes away (open streams see Unavailable); `listen()` brings it back. */
  stop (): void {
    this.#server?.forceShutdown()
    this.#server = null
    this.#x509Calls.clear()
    this.#bundleCalls.clear()
  }

  /** Stops and removes the temporary directory of the socket. */
  async close (): Promise<void> {
    this.stop()
    if (this.#tempDir !== null) await rm(this.#tempDir, { recursive: true, force: true })
  }
}
