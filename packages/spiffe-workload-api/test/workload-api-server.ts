// A Workload API server for the tests: the package's own proto served by @grpc/grpc-js over a real socket, with
// SVIDs made by mtls-pki, and the misbehaviours the client must survive on demand.
import { X509Certificate, createPrivateKey } from 'node:crypto'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import * as grpc from '@grpc/grpc-js'
import type { IssuedCertificate } from 'mtls-pki'
import { tempDir, type Teardown } from 'mtls-test-support'
import { SECURITY_HEADER, workloadServiceDefinition, type RawX509BundlesResponse, type RawX509Svid, type RawX509SvidResponse } from '../src/proto.js'

/** DER of each PEM certificate in `pem`, in order. */
export function pemToDer (pem: string): Buffer[] {
  return [...pem.matchAll(/-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/g)].map(m => Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64'))
}

/** An X509SVID message for an mTLS-PKI certificate: chain DER, PKCS#8 DER key, the root as the bundle. */
export function svidMessage (spiffeId: string, issued: IssuedCertificate, hint = ''): RawX509Svid {
  return {
    spiffeId,
    x509Svid: Buffer.concat(pemToDer(issued.chain)),
    x509SvidKey: createPrivateKey(issued.key).export({ type: 'pkcs8', format: 'der' }),
    bundle: Buffer.concat(pemToDer(issued.ca)),
    hint
  }
}

/** The leaf's DER, for comparisons. */
export function leafDer (issued: IssuedCertificate): Buffer {
  return Buffer.from(new X509Certificate(issued.certificate).raw)
}

type StreamCall<T> = grpc.ServerWritableStream<object, T>

export class TestWorkloadApi {
  readonly endpoint: string
  readonly address: string
  /** Calls refused for want of the security header. */
  refusedWithoutHeader = 0
  /** Calls accepted (header present). */
  accepted = 0
  #server: grpc.Server | null = null
  #x509: RawX509SvidResponse | null = null
  #bundles: RawX509BundlesResponse | null = null
  #deny: { code: grpc.status, details: string } | null = null
  readonly #x509Calls = new Set<StreamCall<RawX509SvidResponse>>()
  readonly #bundleCalls = new Set<StreamCall<RawX509BundlesResponse>>()
  readonly #socketPath: string | null

  private constructor (address: string, endpoint: string, socketPath: string | null) {
    this.address = address
    this.endpoint = endpoint
    this.#socketPath = socketPath
  }

  /** A server on a Unix socket in a new temp dir (or on 127.0.0.1 with `tcp`), stopped at teardown. */
  static async start (t: Teardown, options: { tcp?: boolean } = {}): Promise<TestWorkloadApi> {
    let api: TestWorkloadApi
    if (options.tcp === true) {
      api = new TestWorkloadApi('127.0.0.1:0', '', null)
    } else {
      const path = join(await tempDir(t, 'workload-api-'), 'agent.sock')
      api = new TestWorkloadApi(`unix:${path}`, `unix://${path}`, path)
    }
    t.teardown(() => api.stop())
    return await api.listen()
  }

  async listen (): Promise<this> {
    if (this.#socketPath !== null) await rm(this.#socketPath, { force: true })
    const server = new grpc.Server()
    const service = workloadServiceDefinition()
    server.addService(service, {
      FetchX509SVID: (call: StreamCall<RawX509SvidResponse>) => {
        if (!this.#admit(call)) return
        this.#x509Calls.add(call)
        call.on('cancelled', () => this.#x509Calls.delete(call))
        call.on('close', () => this.#x509Calls.delete(call))
        if (this.#x509 !== null) call.write(this.#x509)
      },
      FetchX509Bundles: (call: StreamCall<RawX509BundlesResponse>) => {
        if (!this.#admit(call)) return
        this.#bundleCalls.add(call)
        call.on('cancelled', () => this.#bundleCalls.delete(call))
        call.on('close', () => this.#bundleCalls.delete(call))
        if (this.#bundles !== null) call.write(this.#bundles)
      },
      FetchJWTSVID: (_call: unknown, callback: grpc.sendUnaryData<object>) => callback({ code: grpc.status.UNIMPLEMENTED, details: 'not in this test server' }),
      FetchJWTBundles: (call: StreamCall<object>) => call.emit('error', { code: grpc.status.UNIMPLEMENTED, details: 'not in this test server' }),
      ValidateJWTSVID: (_call: unknown, callback: grpc.sendUnaryData<object>) => callback({ code: grpc.status.UNIMPLEMENTED, details: 'not in this test server' })
    })
    const port = await new Promise<number>((resolve, reject) => {
      server.bindAsync(this.address, grpc.ServerCredentials.createInsecure(), (err, bound) => (err === null ? resolve(bound) : reject(err)))
    })
    this.#server = server
    if (this.#socketPath === null) (this as { endpoint: string }).endpoint = `tcp://127.0.0.1:${port}`
    return this
  }

  #admit (call: StreamCall<unknown>): boolean {
    if (call.metadata.get(SECURITY_HEADER)[0] !== 'true') {
      this.refusedWithoutHeader += 1
      call.emit('error', { code: grpc.status.INVALID_ARGUMENT, details: 'security header missing from request' })
      return false
    }
    if (this.#deny !== null) {
      call.emit('error', this.#deny)
      return false
    }
    this.accepted += 1
    return true
  }

  /** Sets the X509SVIDResponse: sent to every open stream now and to each new one. */
  setX509 (response: Partial<RawX509SvidResponse> & { svids: RawX509Svid[] }): void {
    this.#x509 = { crl: [], federatedBundles: {}, ...response }
    for (const call of this.#x509Calls) call.write(this.#x509)
  }

  setBundles (response: Partial<RawX509BundlesResponse>): void {
    this.#bundles = { crl: [], bundles: {}, ...response }
    for (const call of this.#bundleCalls) call.write(this.#bundles)
  }

  /** Fails every new call with this status (`null` serves again), and the open streams too. */
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

  /** Stops the server at once (open streams see Unavailable). */
  stop (): void {
    this.#server?.forceShutdown()
    this.#server = null
    this.#x509Calls.clear()
    this.#bundleCalls.clear()
  }
}
