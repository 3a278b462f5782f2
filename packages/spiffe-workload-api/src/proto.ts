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

export interface RawJwtSvidRequest {
  audience: string[]
  spiffeId: string
}

export interface RawJwtSvid {
  spiffeId: string
  svid: string
  hint: string
}

export interface RawJwtSvidResponse {
  svids: RawJwtSvid[]
}

export interface RawJwtBundlesResponse {
  /** JWKS documents (JSON bytes) keyed by trust domain name. */
  bundles: Record<string, Buffer>
}

export interface RawValidateJwtSvidRequest {
  audience: string
  svid: string
}

/** google.protobuf.Value as decoded with `oneofs: true`: `kind` names the field that is set. */
export interface RawValue {
  kind?: 'nullValue' | 'numberValue' | 'stringValue' | 'boolValue' | 'structValue' | 'listValue'
  nullValue?: string | number
  numberValue?: number
  stringValue?: string
  boolValue?: boolean
  structValue?: RawStruct | null
  listValue?: { values: RawValue[] } | null
}

export interface RawStruct {
  fields: Record<string, RawValue>
}

export interface RawValidateJwtSvidResponse {
  spiffeId: string
  claims: RawStruct | null
}

/** JSON (claims) as a google.protobuf.Struct value. */
export function toRawValue (value: unknown): RawValue {
  if (value === null || value === undefined) return { nullValue: 0 }
  if (typeof value === 'number') return { numberValue: value }
  if (typeof value === 'string') return { stringValue: value }
  if (typeof value === 'boolean') return { boolValue: value }
  if (Array.isArray(value)) return { listValue: { values: value.map(toRawValue) } }
  return { structValue: toRawStruct(value as Record<string, unknown>) }
}

export function toRawStruct (object: Record<string, unknown>): RawStruct {
  return { fields: Object.fromEntries(Object.entries(object).map(([key, value]) => [key, toRawValue(value)])) }
}

/** A google.protobuf.Struct back as JSON. */
export function fromRawStruct (struct: RawStruct | null | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(struct?.fields ?? {})) out[key] = fromRawValue(value)
  return out
}

function fromRawValue (value: RawValue): unknown {
  switch (value.kind) {
    case 'numberValue': return value.numberValue
    case 'stringValue': return value.stringValue
    case 'boolValue': return value.boolValue
    case 'structValue': return fromRawStruct(value.structValue)
    case 'listValue': return (value.listValue?.values ?? []).map(fromRawValue)
    default: return null
  }
}

/** The proto file shipped in the package (`proto/workload.proto`), beside `dist/` and `src/`. */
export const PROTO_FILE = fileURLToPath(new URL('../proto/workload.proto', import.meta.url))

let serviceDefinition: grpc.ServiceDefinition | undefined

/** The SpiffeWorkloadAPI service, loaded once. */
export function workloadServiceDefinition (): grpc.ServiceDefinition {
  if (serviceDefinition === undefined) {
    const definition = loadSync(PROTO_FILE, { keepCase: false, longs: String, enums: String, defaults: true, arrays: true, objects: true, oneofs: true })
    serviceDefinition = definition.SpiffeWorkloadAPI as grpc.ServiceDefinition
  }
  return serviceDefinition
}

/** The header every Workload API call carries; an agent refuses a call without it (SSRF protection). */
export const SECURITY_HEADER = 'workload.spiffe.io'
