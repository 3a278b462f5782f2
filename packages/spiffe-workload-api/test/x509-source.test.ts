import { once } from 'node:events'
import { X509Certificate, createPublicKey, sign, verify } from 'node:crypto'
import * as grpc from '@grpc/grpc-js'
import t from 'tap'
import { createTestPki } from 'mtls-pki'
import { X509Source, createX509Source, type X509Material } from '../src/index.js'
import { SECURITY_HEADER, workloadServiceDefinition } from '../src/proto.js'
import { hangLimit, until } from 'mtls-test-support'
import { TestWorkloadApi, leafDer, pemToDer, svidMessage } from './workload-api-server.js'

const pki = await createTestPki()
const FAST = { initialMs: 20, maxMs: 200 }
const ORDER = 'spiffe://mycompany.com/production/order-service'
const INVENTORY = 'spiffe://mycompany.com/production/inventory-service'

// Not events.once: it would also listen for 'error', which the source then emits.
function nextUpdate (source: X509Source): Promise<X509Material> {
  return new Promise(resolve => source.once('update', resolve))
}

/**
 * A source before its first SVID, and the errors it reports. The cause a timeout gives is the last of them: waiting
 * for one, then for ready(), assumes no speed (a short timeoutMs assumed the error would come within it).
 */
function pendingSource (t: { teardown: (fn: () => unknown) => void }, options: ConstructorParameters<typeof X509Source>[0]): { source: X509Source, errors: Error[] } {
  const source = new X509Source(options)
  t.teardown(() => source.close())
  const errors: Error[] = []
  source.on('error', error => errors.push(error))
  return { source, errors }
}
// Hang limits of the subtests: each ends in well under a second on a quiet machine.
// Below tap's 30 s for the file, so that a hang names its subtest.
const LIMIT = { timeout: hangLimit(20_000) }

t.test('the agent refuses a call without the security header, and serves this client, which sends it', LIMIT, async t => {
  const api = await TestWorkloadApi.start(t)
  api.setX509({ svids: [svidMessage(ORDER, pki.orderService)] })
  const Client = grpc.makeGenericClientConstructor(workloadServiceDefinition(), 'SpiffeWorkloadAPI')
  const bare = new Client(api.address, grpc.credentials.createInsecure())
  t.teardown(() => bare.close())
  const call = bare.makeServerStreamRequest(workloadServiceDefinition().FetchX509SVID!.path, (m: object) => Buffer.from(JSON.stringify(m)).subarray(0, 0), (b: Buffer) => b, {})
  const [error] = await once(call, 'error') as [grpc.ServiceError]
  t.equal(error.code, grpc.status.INVALID_ARGUMENT)
  t.equal(api.refusedWithoutHeader, 1)

  const source = await createX509Source({ endpoint: api.endpoint, timeoutMs: hangLimit(30_000) })
  t.teardown(() => source.close())
  t.equal(source.current.svid.spiffeId, ORDER)
  t.equal(api.refusedWithoutHeader, 1, 'no refused call from the client')
  t.equal(api.accepted, 1)
  t.equal(SECURITY_HEADER, 'workload.spiffe.io')
})

t.test('the first SVID arrives: current holds the issued certificate and a key that signs for it', LIMIT, async t => {
  const api = await TestWorkloadApi.start(t)
  api.setX509({ svids: [svidMessage(ORDER, pki.orderService, 'internal')] })
  const source = await createX509Source({ endpoint: api.endpoint })
  t.teardown(() => source.close())
  const { svid, bundles } = source.current
  t.equal(svid.spiffeId, ORDER)
  t.equal(svid.hint, 'internal')
  t.ok(svid.certificates[0]!.equals(leafDer(pki.orderService)), 'leaf DER as issued')
  t.same(svid.certificates.map(der => der.toString('hex')), pemToDer(pki.orderService.chain).map(der => der.toString('hex')), 'chain, leaf first')
  const data = Buffer.from('proof of possession')
  const signature = sign('sha256', data, svid.privateKey)
  t.ok(verify('sha256', data, createPublicKey(new X509Certificate(svid.certificates[0]!).publicKey.export({ type: 'spki', format: 'pem' })), signature))
  t.same([...bundles.keys()], ['mycompany.com'])
  t.ok(bundles.get('mycompany.com')![0]!.equals(pemToDer(pki.ca)[0]!))
  const status = source.status()
  t.equal(status.connected, true)
  t.equal(status.reconnects, 0)
  t.equal(status.lastError, null)
  t.ok(status.lastUpdate instanceof Date)
})

t.test('a pushed rotation reaches on("update") and replaces current whole', LIMIT, async t => {
  const api = await TestWorkloadApi.start(t)
  api.setX509({ svids: [svidMessage(ORDER, pki.orderService)] })
  const source = await createX509Source({ endpoint: api.endpoint })
  t.teardown(() => source.close())
  const before = source.current
  const rotated = await pki.intermediate.issue({ spiffeId: ORDER, usage: 'client' })
  const updated = nextUpdate(source)
  api.setX509({ svids: [svidMessage(ORDER, rotated)] })
  const material = await updated
  t.ok(material.svid.certificates[0]!.equals(leafDer(rotated)))
  t.equal(source.current, material)
  t.ok(before.svid.certificates[0]!.equals(leafDer(pki.orderService)), 'the old material is left as it was')
})

t.test('a federated bundle is added, then removed', LIMIT, async t => {
  const api = await TestWorkloadApi.start(t)
  const svids = [svidMessage(ORDER, pki.orderService)]
  api.setX509({ svids })
  const source = await createX509Source({ endpoint: api.endpoint })
  t.teardown(() => source.close())
  const partner = Buffer.concat(pemToDer(pki.otherCaAuthority.root.certificate))
  let updated = nextUpdate(source)
  api.setX509({ svids, federatedBundles: { 'partner.example': partner } })
  t.same([...(await updated).bundles.keys()].sort(), ['mycompany.com', 'partner.example'])
  t.ok(source.current.bundles.get('partner.example')![0]!.equals(partner))
  updated = nextUpdate(source)
  api.setX509({ svids })
  t.same([...(await updated).bundles.keys()], ['mycompany.com'])
})

t.test('pick by SPIFFE ID or by function; no match is an error event, not an update', LIMIT, async t => {
  const api = await TestWorkloadApi.start(t)
  api.setX509({ svids: [svidMessage(ORDER, pki.orderService), svidMessage(INVENTORY, pki.inventoryService, 'external')] })
  const byId = await createX509Source({ endpoint: api.endpoint, pick: INVENTORY })
  t.teardown(() => byId.close())
  t.equal(byId.current.svid.spiffeId, INVENTORY)
  const byHint = await createX509Source({ endpoint: api.endpoint, pick: svids => svids.find(svid => svid.hint === 'external') })
  t.teardown(() => byHint.close())
  t.equal(byHint.current.svid.spiffeId, INVENTORY)
  const hint = await createX509Source({ endpoint: api.endpoint, pick: { hint: 'external' } })
  t.teardown(() => hint.close())
  t.equal(hint.current.svid.spiffeId, INVENTORY, 'by hint, as the Workload API intends it')
  t.throws(() => new X509Source({ endpoint: api.endpoint, pick: { hint: '' } }), { code: 'ERR_MTLS_WORKLOAD_INVALID_OPTION' })
  t.throws(() => new X509Source({ endpoint: api.endpoint, pick: { hint: 'a', spiffeId: 'b' } as never }), { code: 'ERR_MTLS_WORKLOAD_INVALID_OPTION' })
  const hintErrored = once(hint, 'error')
  const errored = once(byId, 'error')
  api.setX509({ svids: [svidMessage(ORDER, pki.orderService)] })
  const [error] = await errored
  t.match(error, { code: 'ERR_MTLS_WORKLOAD_SVID_NOT_FOUND' })
  t.equal(byId.current.svid.spiffeId, INVENTORY, 'the picked SVID stays')
  t.match((await hintErrored)[0], { code: 'ERR_MTLS_WORKLOAD_SVID_NOT_FOUND', message: /wanted hint "external"/ })
  const nobody = pendingSource(t, { endpoint: api.endpoint, pick: 'spiffe://mycompany.com/nobody' })
  await until(() => nobody.errors.length > 0, 'the SVIDs to come without the one picked')
  await t.rejects(nobody.source.ready(1), { code: 'ERR_MTLS_WORKLOAD_TIMEOUT', cause: { code: 'ERR_MTLS_WORKLOAD_SVID_NOT_FOUND' } })
})

t.test('the agent goes away and comes back: current is kept meanwhile, the client reconnects and status says so', LIMIT, async t => {
  const api = await TestWorkloadApi.start(t)
  api.setX509({ svids: [svidMessage(ORDER, pki.orderService)] })
  const source = await createX509Source({ endpoint: api.endpoint, backoff: FAST })
  t.teardown(() => source.close())
  const errors: string[] = []
  source.on('error', error => errors.push(`${error.code} ${error.message}`))
  api.stop()
  await until(() => !source.status().connected, 'the disconnection')
  t.equal(source.current.svid.spiffeId, ORDER, 'current is kept while the agent is away')
  await until(() => errors.length >= 2, 'a failed reconnection')
  t.equal(source.status().lastError?.code, 'ERR_MTLS_WORKLOAD_UNAVAILABLE')
  t.ok(errors.every(line => line.startsWith('ERR_MTLS_WORKLOAD_UNAVAILABLE ')), errors.join('\n'))

  const rotated = await pki.intermediate.issue({ spiffeId: ORDER, usage: 'client' })
  api.setX509({ svids: [svidMessage(ORDER, rotated)] })
  const updated = nextUpdate(source)
  await api.listen()
  t.ok((await updated).svid.certificates[0]!.equals(leafDer(rotated)))
  const status = source.status()
  t.equal(status.connected, true)
  t.ok(status.reconnects >= 1, `reconnects: ${status.reconnects}`)
})

t.test('a stream the agent ends is reopened', LIMIT, async t => {
  const api = await TestWorkloadApi.start(t)
  api.setX509({ svids: [svidMessage(ORDER, pki.orderService)] })
  const source = await createX509Source({ endpoint: api.endpoint, backoff: FAST })
  t.teardown(() => source.close())
  const updated = nextUpdate(source)
  api.endStreams()
  await updated
  t.equal(source.status().reconnects, 1)
  t.equal(api.accepted, 2)
})

t.test('no SVID in time: ERR_MTLS_WORKLOAD_TIMEOUT, and the connection is closed', LIMIT, async t => {
  const api = await TestWorkloadApi.start(t)
  await t.rejects(createX509Source({ endpoint: api.endpoint, timeoutMs: 300 }), { code: 'ERR_MTLS_WORKLOAD_TIMEOUT', message: /within 300 ms/ })
  await until(() => api.openStreams === 0, 'the stream to close')
})

t.test('no agent at all: ERR_MTLS_WORKLOAD_TIMEOUT whose cause says Unavailable', LIMIT, async t => {
  const api = await TestWorkloadApi.start(t)
  api.stop()
  const { source, errors } = pendingSource(t, { endpoint: api.endpoint, backoff: FAST })
  await until(() => errors.length > 0, 'a failed connection')
  await t.rejects(source.ready(1), {
    code: 'ERR_MTLS_WORKLOAD_TIMEOUT', cause: { code: 'ERR_MTLS_WORKLOAD_UNAVAILABLE', grpcCode: grpc.status.UNAVAILABLE }
  })
})

t.test('PermissionDenied becomes ERR_MTLS_WORKLOAD_DENIED, and the source serves once the agent grants', LIMIT, async t => {
  const api = await TestWorkloadApi.start(t)
  api.deny({ code: grpc.status.PERMISSION_DENIED, details: 'no identity issued' })
  const { source, errors } = pendingSource(t, { endpoint: api.endpoint, backoff: FAST })
  await until(() => errors.length > 0, 'a denial')
  await t.rejects(source.ready(1), {
    code: 'ERR_MTLS_WORKLOAD_TIMEOUT', cause: { code: 'ERR_MTLS_WORKLOAD_DENIED', grpcCode: grpc.status.PERMISSION_DENIED, message: /no identity issued/ }
  })
  // The same source, denied until now, keeps asking.
  const served = nextUpdate(source)
  api.setX509({ svids: [svidMessage(ORDER, pki.orderService)] })
  api.deny(null)
  await served
  t.equal(source.status().lastError, null, 'served: the denial is over, and no longer the last error')

  const denied = once(source, 'error')
  api.deny({ code: grpc.status.PERMISSION_DENIED, details: 'entry deleted' })
  const [error] = await denied
  t.match(error, { code: 'ERR_MTLS_WORKLOAD_DENIED', message: /entry deleted/ })
  t.equal(source.current.svid.spiffeId, ORDER, 'current stays after a denial')
})

t.test('a malformed message is reported and skipped; the last good material stays', LIMIT, async t => {
  const api = await TestWorkloadApi.start(t)
  const good = svidMessage(ORDER, pki.orderService)
  api.setX509({ svids: [good] })
  const source = await createX509Source({ endpoint: api.endpoint })
  t.teardown(() => source.close())
  const bad = [
    { svids: [] },
    { svids: [{ ...good, x509SvidKey: svidMessage(INVENTORY, pki.inventoryService).x509SvidKey }] },
    { svids: [{ ...good, x509SvidKey: Buffer.from('not a key') }] },
    { svids: [{ ...good, x509Svid: good.x509Svid.subarray(0, 100) }] },
    { svids: [{ ...good, x509Svid: Buffer.from([0x30, 0x03, 0x02, 0x01, 0x00]) }] },
    { svids: [{ ...good, x509Svid: Buffer.alloc(0) }] },
    { svids: [{ ...good, bundle: Buffer.from([0x31, 0x00]) }] },
    { svids: [{ ...good, bundle: Buffer.from([0x30, 0x80]) }] },
    { svids: [{ ...good, spiffeId: 'spiffe://mycompany.com' }] },
    { svids: [{ ...good, spiffeId: 'https://mycompany.com/order-service' }] },
    // The label says payment-service; the certificate is order-service's.
    { svids: [{ ...good, spiffeId: 'spiffe://mycompany.com/production/payment-service' }] },
    { svids: [good], federatedBundles: { 'Partner.Example!': good.bundle } }
  ]
  for (const message of bad) {
    const errored = once(source, 'error')
    api.setX509(message)
    const [error] = await errored
    t.match(error, { code: 'ERR_MTLS_WORKLOAD_INVALID_RESPONSE' })
  }
  t.ok(source.current.svid.certificates[0]!.equals(leafDer(pki.orderService)))
})

t.test('options are checked: unknown keys, bad values', async t => {
  await t.rejects(createX509Source({ endpoint: 'unix:///x.sock', timeout: 5 } as never), { code: 'ERR_MTLS_WORKLOAD_INVALID_OPTION', message: /unknown option "timeout" \(did you mean "timeoutMs"\?\)/ })
  await t.rejects(createX509Source({ endpoint: 'unix:///x.sock', timeoutMs: 0 }), { code: 'ERR_MTLS_WORKLOAD_INVALID_OPTION', message: 'createX509Source: timeoutMs must be a positive number; got 0' })
  await t.rejects(createX509Source({ endpoint: 'unix:///x.sock', timeoutMs: '5000' as never }), { code: 'ERR_MTLS_WORKLOAD_INVALID_OPTION' })
  await t.rejects(createX509Source({ endpoint: 'unix:///x.sock', pick: 42 as never }), { code: 'ERR_MTLS_WORKLOAD_INVALID_OPTION' })
  await t.rejects(createX509Source({ endpoint: 'unix:///x.sock', backoff: { initialMs: -1 } }), { code: 'ERR_MTLS_WORKLOAD_INVALID_OPTION' })
  await t.rejects(createX509Source({ endpoint: 'unix:///x.sock', backoff: { initialMs: 500, maxMs: 100 } }), { code: 'ERR_MTLS_WORKLOAD_INVALID_OPTION' })
  await t.rejects(createX509Source({ endpoint: 'unix:///x.sock', backoff: { initial: 5 } as never }), { code: 'ERR_MTLS_WORKLOAD_INVALID_OPTION' })
  await t.rejects(createX509Source({ endpoint: 'http://x' }), { code: 'ERR_MTLS_WORKLOAD_ENDPOINT_INVALID' })
})

t.test('a closed source throws on current and stops its stream', LIMIT, async t => {
  const api = await TestWorkloadApi.start(t)
  api.setX509({ svids: [svidMessage(ORDER, pki.orderService)] })
  const source = await createX509Source({ endpoint: api.endpoint })
  source.close()
  source.close()
  t.throws(() => source.current, { code: 'ERR_MTLS_WORKLOAD_CLOSED' })
  t.equal(source.status().closed, true)
  await until(() => api.openStreams === 0, 'the stream to close')
})

t.test('InvalidArgument after the first SVID: the source gives up (as go-spiffe does), says so in status, and keeps its SVID', LIMIT, async t => {
  const api = await TestWorkloadApi.start(t)
  api.setX509({ svids: [svidMessage(ORDER, pki.orderService)] })
  const source = await createX509Source({ endpoint: api.endpoint, backoff: FAST })
  t.teardown(() => source.close())
  const errored = once(source, 'error')
  api.deny({ code: grpc.status.INVALID_ARGUMENT, details: 'malformed request' })
  const [error] = await errored
  t.match(error, { code: 'ERR_MTLS_WORKLOAD_REFUSED' })
  t.match(source.status(), { closed: true, connected: false, lastError: { code: 'ERR_MTLS_WORKLOAD_REFUSED' } }, 'no more updates will come')
  t.equal(source.current.svid.spiffeId, ORDER, 'the SVID in force stays readable')
  api.deny(null)
  // A source that is served, with a slower backoff than FAST, is made to call again: by the time it has, the one
  // that gave up would have called again too, had it not given up.
  const control = await createX509Source({ endpoint: api.endpoint, backoff: { initialMs: 200, maxMs: 200 } })
  t.teardown(() => control.close())
  const accepted = api.accepted
  api.endStreams()
  await until(() => api.accepted > accepted, 'the served source to call again')
  t.equal(api.accepted, accepted + 1, 'it does not call again: only the served source did')
  t.equal(api.openStreams, 1)
})
