import { fileURLToPath } from 'node:url'
import * as grpc from '@grpc/grpc-js'
import { loadSync } from '@grpc/proto-loader'

/** The messages as @grpc/proto-loader decodes them (camelCase fields, bytes as Buffers, defaults filled in). */
export interface RawX509Svid {
  spiffeId: string
  x509Svid: Buffer
  x509SvidKey: Buffer
  bundle: Buffer
  hint: string
}

export interface RawX509SvidResponse {
  svids: RawX509Svid[]
  crl: Buffer[]
  federatedBundles: Record<string, Buffer>
}

export interface RawX509BundlesResponse {
  crl: Buffer[]
  bundles: Record<string, Buffer>
}

/** The proto file shipped in the package (`proto/workload.proto`), beside `dist/` and `src/`. */
export const PROTO_FILE = fileURLToPath(new URL('../proto/workload.proto', import.meta.url))

let serviceDefinition: grpc.ServiceDefinition | undefined

/** The SpiffeWorkloadAPI service, loaded once. */
export function workloadServiceDefinition (): grpc.ServiceDefinition {
  if (serviceDefinition === undefined) {
    const definition = loadSync(PROTO_FILE, { keepCase: false, longs: String, enums: String, defaults: true, arrays: true, objects: true })
    serviceDefinition = definition.SpiffeWorkloadAPI as grpc.ServiceDefinition
  }
  return serviceDefinition
}

/** The header every Workload API call carries; an agent refuses a call without it (SSRF protection). */
export const SECURITY_HEADER = 'workload.spiffe.io'
