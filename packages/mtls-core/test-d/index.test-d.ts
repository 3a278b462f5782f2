import { X509Certificate } from 'node:crypto'
import { expectAssignable, expectError, expectNotAssignable, expectType } from 'tsd'
import {
  IdentityMatcher,
  MaterialError,
  MaterialSource,
  MtlsCoreError,
  type OpenSslVerifyCode,
  SpiffeIdError,
  compileMatcher,
  createMaterialSource,
  loadMaterial,
  materialTlsOptions,
  parseSpiffeId,
  parseXfcc,
  toPeerIdentity,
  type Material,
  type MaterialErrorCode,
  type PeerIdentity,
  type SpiffeId,
  type SpiffeIdErrorCode,
  type XfccElement
} from 'mtls-core'

declare const cert: X509Certificate
const identity = toPeerIdentity(cert)
expectType<PeerIdentity>(identity)
expectType<string>(identity.thumbprintS256)
expectType<string>(identity.toJSON().thumbprintS256)
expectType<PeerIdentity>(toPeerIdentity(Buffer.alloc(1), { source: 'forwarded', svid: false, identify: i => i.commonName ?? '' }))
expectType<SpiffeId | null>(identity.spiffeId)
expectType<'tls' | 'forwarded' | 'jwt-svid'>(identity.source)
expectType<readonly string[]>(identity.dnsNames)
expectError(identity.id = 'x')
expectError(toPeerIdentity(cert, { source: 'proxy' }))
expectError(toPeerIdentity('pem'))

const id = parseSpiffeId('spiffe://example.org/a')
expectType<string>(id.trustDomain)
expectType<readonly string[]>(id.segments)
expectType<string>(id.toString())

expectType<IdentityMatcher<string>>(compileMatcher(['spiffe://example.org/**']))
const roles = new IdentityMatcher<'read' | 'write'>([['spiffe://example.org/**', 'read']])
expectType<Array<'read' | 'write'>>(roles.lookup(identity))
expectType<boolean>(roles.matches(identity))
expectError(new IdentityMatcher<'read'>([['spiffe://example.org/**', 'write']]))

expectType<XfccElement[]>(parseXfcc('URI=spiffe://example.org/a'))
expectType<readonly string[]>(parseXfcc('x')[0]!.uri)
expectType<readonly string[]>(parseXfcc('By=a;By=b')[0]!.by)

expectType<Promise<Material>>(loadMaterial({ certFile: 'c', keyFile: 'k', caFile: ['a', 'b'] }, { side: 'server' }))
expectError(loadMaterial({ certFile: 'c' }, { side: 'both' }))
// The material's part of TLS options only: no minVersion, nothing else of a secure context.
declare const loaded: Material
expectType<{ cert: string, key: string, ca: string[], crl?: string[] }>(materialTlsOptions(loaded))
expectError(materialTlsOptions(loaded).minVersion)
const source = await createMaterialSource({ cert: '', key: '', ca: '' }, { side: 'client', poll: 500, debounceMs: 50 })
expectType<MaterialSource>(source)
expectType<Material>(source.current)
source.on('update', (material, previous) => { expectType<Material>(material); expectType<Material>(previous) })
source.on('error', error => { expectType<Error>(error) })
expectError(source.on('change', () => {}))

const err = new MaterialError('ERR_MTLS_MATERIAL_EXPIRED', 'x', { file: 'f' })
expectType<MaterialErrorCode>(err.code)
expectType<string | undefined>(err.file)
expectAssignable<MtlsCoreError>(err)
expectError(new MaterialError('NOPE', 'x'))
expectType<SpiffeIdErrorCode>(new SpiffeIdError('ERR_MTLS_SPIFFE_ID_EMPTY', 'x').code)

// OpenSSL's verdict names, as Node reports them: a misspelt one is not one of them.
expectAssignable<OpenSslVerifyCode>('CERT_HAS_EXPIRED')
expectAssignable<OpenSslVerifyCode>('UNABLE_TO_VERIFY_LEAF_SIGNATURE')
expectNotAssignable<OpenSslVerifyCode>('CERT_HAS_EXPRIED')
