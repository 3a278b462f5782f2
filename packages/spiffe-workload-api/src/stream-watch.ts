import * as grpc from '@grpc/grpc-js'
import { describeThrown } from 'mtls-core/internal'
import { Backoff, type BackoffOptions } from './backoff.js'
import { WorkloadApiError, type WorkloadApiErrorCode } from './errors.js'

/** What a watch tells its user: each update, and each failure (after which it reconnects unless it says it stopped). */
export interface WatchListener<Update> {
  onUpdate: (update: Update) => void
  /** `retrying` is false when the watch gave up (the agent refused the request as malformed) or was closed. */
  onError?: (error: WorkloadApiError, retrying: boolean) => void
}

/** A running watch over one of the Workload API's streams. */
export interface Watch {
  /** True from the first message of a stream until that stream fails or ends. */
  readonly connected: boolean
  /** Streams opened again after one failed or ended. */
  readonly reconnects: number
  readonly closed: boolean
  close: () => void
}

const CODES: Partial<Record<grpc.status, WorkloadApiErrorCode>> = {
  [grpc.status.PERMISSION_DENIED]: 'ERR_MTLS_WORKLOAD_DENIED',
  [grpc.status.UNAVAILABLE]: 'ERR_MTLS_WORKLOAD_UNAVAILABLE',
  // Only the agent can cancel a call this package has not closed: it shut down.
  [grpc.status.CANCELLED]: 'ERR_MTLS_WORKLOAD_UNAVAILABLE',
  [grpc.status.INVALID_ARGUMENT]: 'ERR_MTLS_WORKLOAD_REFUSED'
}

/** A gRPC status as this package's error. */
export function toWorkloadApiError (method: string, status: { code: grpc.status, details: string }): WorkloadApiError {
  const code = agentWentAway(status) ? 'ERR_MTLS_WORKLOAD_UNAVAILABLE' : CODES[status.code] ?? 'ERR_MTLS_WORKLOAD_RPC_FAILED'
  const meaning = code === 'ERR_MTLS_WORKLOAD_DENIED'
    ? 'the agent has no identity for this workload'
    : code === 'ERR_MTLS_WORKLOAD_UNAVAILABLE' ? 'the agent cannot be reached' : 'the call failed'
  return new WorkloadApiError(code, `Workload API ${method}: ${meaning}: ${status.details} (gRPC ${grpc.status[status.code]})`,
    { grpcCode: status.code })
}

// A stream the agent reset without a gRPC status: grpc-js reports Internal, "Received RST_STREAM with code N" (an agent
// shutting down does this, SPIRE's among them). The transport ended, not a call the agent answered with an error.
function agentWentAway (status: { code: grpc.status, details: string }): boolean {
  return status.code === grpc.status.INTERNAL && status.details.startsWith('Received RST_STREAM with code ')
}

export interface StreamWatchOptions<Raw, Update> {
  client: grpc.Client
  method: grpc.MethodDefinition<object, Raw>
  name: string
  request: object
  metadata: () => grpc.Metadata
  convert: (raw: Raw) => Update
  backoff: BackoffOptions | undefined
  onClose: (watch: StreamWatch<Raw, Update>) => void
}

/** One server stream kept open: reopened with backoff when it fails or ends, until closed. */
export class StreamWatch<Raw, Update> implements Watch {
  readonly #options: StreamWatchOptions<Raw, Update>
  readonly #listener: WatchListener<Update>
  readonly #backoff: Backoff
  #call: grpc.ClientReadableStream<Raw> | null = null
  #timer: NodeJS.Timeout | null = null
  #connected = false
  #reconnects = 0
  #closed = false

  constructor (options: StreamWatchOptions<Raw, Update>, listener: WatchListener<Update>) {
    this.#options = options
    this.#listener = listener
    this.#backoff = new Backoff(options.backoff)
    this.#open()
  }

  get connected (): boolean { return this.#connected }
  get reconnects (): number { return this.#reconnects }
  get closed (): boolean { return this.#closed }

  #open (): void {
    const { client, method, request, metadata } = this.#options
    const call = client.makeServerStreamRequest(method.path, method.requestSerialize, method.responseDeserialize, request, metadata(), {})
    this.#call = call
    call.on('data', (raw: Raw) => {
      if (this.#call !== call) return
      let update: Update
      try {
        update = this.#options.convert(raw)
      } catch (err) {
        // A malformed message is reported and skipped: the last good material stays.
        this.#report(err instanceof WorkloadApiError ? err : new WorkloadApiError('ERR_MTLS_WORKLOAD_INVALID_RESPONSE', describeThrown(err), { cause: err }), true)
        return
      }
      this.#connected = true
      this.#backoff.reset()
      this.#listener.onUpdate(update)
    })
    // Every end of a call comes as one 'status'; 'error' repeats it for a non-OK status.
    call.on('error', () => {})
    call.on('status', (status: grpc.StatusObject) => {
      if (this.#call !== call || this.#closed) return
      this.#call = null
      this.#connected = false
      if (status.code === grpc.status.OK) {
        this.#report(new WorkloadApiError('ERR_MTLS_WORKLOAD_UNAVAILABLE', `Workload API ${this.#options.name}: the agent ended the stream`,
          { grpcCode: status.code }), true)
        this.#retry()
        return
      }
      const error = toWorkloadApiError(this.#options.name, status)
      // InvalidArgument: the agent will refuse the same request again (go-spiffe stops there too).
      if (status.code === grpc.status.INVALID_ARGUMENT) {
        this.#report(error, false)
        this.close()
        return
      }
      this.#report(error, true)
      this.#retry()
    })
  }

  #report (error: WorkloadApiError, retrying: boolean): void {
    this.#listener.onError?.(error, retrying)
  }

  #retry (): void {
    this.#timer = setTimeout(() => {
      this.#timer = null
      if (this.#closed) return
      this.#reconnects += 1
      this.#open()
    }, this.#backoff.next())
    this.#timer.unref()
  }

  close (): void {
    if (this.#closed) return
    this.#closed = true
    this.#connected = false
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = null
    const call = this.#call
    this.#call = null
    call?.cancel()
    this.#options.onClose(this)
  }
}
