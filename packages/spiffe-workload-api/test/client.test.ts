import t from 'tap'
import { createTestPki } from 'mtls-pki'
import { hangLimit } from 'mtls-test-support'
import { Backoff } from '../src/backoff.js'
import { WorkloadApiClient, WorkloadApiError, derToPem, type X509BundlesUpdate } from '../src/index.js'
import { TestWorkloadApi, pemToDer, svidMessage } from './workload-api-server.js'

const pki = await createTestPki()
const ORDER = 'spiffe://mycompany.com/production/order-service'
// Hang limits of the subtests that wait on the test Workload API: each ends in well under a second on a quiet machine.
// Below tap's 30 s for the file, so that a hang names its subtest.
const LIMIT = { timeout: hangLimit(20_000) }

t.test('watchX509Bundles streams bundle changes over tcp on 127.0.0.1', LIMIT, async t => {
  const api = await TestWorkloadApi.start(t, { tcp: true })
  t.match(api.endpoint, /^tcp:\/\/127\.0\.0\.1:\d+$/)
  const own = Buffer.concat(pemToDer(pki.ca))
  const partner = Buffer.concat(pemToDer(pki.otherCaAuthority.root.certificate))
  api.setBundles({ bundles: { 'mycompany.com': own } })
  const client = new WorkloadApiClient({ endpoint: api.endpoint, backoff: { initialMs: 20, maxMs: 100 } })
  t.teardown(() => client.close())
  const updates: X509BundlesUpdate[] = []
  let wake = (): void => {}
  const watch = client.watchX509Bundles({ onUpdate: update => { updates.push(update); wake() } })
  const next = async (count: number): Promise<X509BundlesUpdate> => {
    while (updates.length < count) await new Promise<void>(resolve => { wake = resolve })
    return updates[count - 1]!
  }
  t.same([...(await next(1)).bundles.keys()], ['mycompany.com'])
  t.equal(watch.connected, true)
  api.setBundles({ bundles: { 'mycompany.com': own, 'partner.example': partner }, crl: [Buffer.from([1, 2, 3])] })
  const second = await next(2)
  t.same([...second.bundles.keys()].sort(), ['mycompany.com', 'partner.example'])
  t.same(second.crls, [Buffer.from([1, 2, 3])])
  api.setBundles({ bundles: { 'mycompany.com': own } })
  t.same([...(await next(3)).bundles.keys()], ['mycompany.com'])
  watch.close()
  t.equal(watch.closed, true)
  t.equal(watch.connected, false)
})

t.test('fetchX509Context gives the first context and closes its stream; errors and timeouts reject', LIMIT, async t => {
  const api = await TestWorkloadApi.start(t)
  const client = new WorkloadApiClient({ endpoint: api.endpoint })
  t.teardown(() => client.close())
  await t.rejects(client.fetchX509Context({ timeoutMs: 200 }), { code: 'ERR_MTLS_WORKLOAD_TIMEOUT' })
  await t.rejects(client.fetchX509Context({ timeoutMs: -1 }), { code: 'ERR_MTLS_WORKLOAD_INVALID_OPTION', message: /fetchX509Context: timeoutMs/ })
  api.setX509({ svids: [svidMessage(ORDER, pki.orderService)] })
  const context = await client.fetchX509Context()
  t.equal(context.svids[0]!.spiffeId, ORDER)
  api.stop()
  await t.rejects(client.fetchX509Context(), { code: 'ERR_MTLS_WORKLOAD_UNAVAILABLE' })
})

t.test('SPIFFE_ENDPOINT_SOCKET is used when no endpoint is given', async t => {
  const saved = process.env.SPIFFE_ENDPOINT_SOCKET
  t.teardown(() => { if (saved === undefined) delete process.env.SPIFFE_ENDPOINT_SOCKET; else process.env.SPIFFE_ENDPOINT_SOCKET = saved })
  process.env.SPIFFE_ENDPOINT_SOCKET = 'unix:///run/spire/agent.sock'
  const client = new WorkloadApiClient()
  t.equal(client.endpoint.target, 'unix:/run/spire/agent.sock')
  client.close()
  client.close()
  t.throws(() => client.watchX509Context({ onUpdate: () => {} }), { code: 'ERR_MTLS_WORKLOAD_CLOSED' })
  t.throws(() => new WorkloadApiClient({ endpont: 'x' } as never), { code: 'ERR_MTLS_WORKLOAD_INVALID_OPTION' })
  t.throws(() => new WorkloadApiClient(null as never), { code: 'ERR_MTLS_WORKLOAD_INVALID_OPTION' })
})

t.test('InvalidArgument stops the watch: the agent would refuse the same request again', LIMIT, async t => {
  const api = await TestWorkloadApi.start(t)
  api.deny({ code: 3, details: 'bad request' })
  const client = new WorkloadApiClient({ endpoint: api.endpoint })
  t.teardown(() => client.close())
  const stopped = await new Promise<[WorkloadApiError, boolean]>(resolve => {
    client.watchX509Context({ onUpdate: () => {}, onError: (error, retrying) => resolve([error, retrying]) })
  })
  t.match(stopped[0], { code: 'ERR_MTLS_WORKLOAD_REFUSED', grpcCode: 3 })
  t.equal(stopped[1], false)
  t.ok(stopped[0] instanceof WorkloadApiError)
  t.notOk(new Error('x') instanceof WorkloadApiError)
  t.notOk((null as unknown) instanceof WorkloadApiError)
})

t.test('other gRPC statuses become ERR_MTLS_WORKLOAD_RPC_FAILED and are retried', LIMIT, async t => {
  const api = await TestWorkloadApi.start(t)
  api.deny({ code: 13, details: 'internal' })
  const client = new WorkloadApiClient({ endpoint: api.endpoint, backoff: { initialMs: 10, maxMs: 20 } })
  t.teardown(() => client.close())
  const [error, retrying] = await new Promise<[WorkloadApiError, boolean]>(resolve => {
    client.watchX509Context({ onUpdate: () => {}, onError: (error, retrying) => resolve([error, retrying]) })
  })
  t.match(error, { code: 'ERR_MTLS_WORKLOAD_RPC_FAILED', grpcCode: 13 })
  t.equal(retrying, true)
})

t.test('backoff doubles from initialMs to maxMs, with jitter in the upper half', async t => {
  const low = new Backoff({ initialMs: 100, maxMs: 1000 }, () => 0)
  t.same([low.next(), low.next(), low.next(), low.next(), low.next(), low.next()], [50, 100, 200, 400, 500, 500])
  low.reset()
  t.equal(low.next(), 50)
  const high = new Backoff({}, () => 1)
  t.equal(high.next(), 100)
  for (let i = 0; i < 40; i++) high.next()
  t.equal(high.next(), 30_000)
})

t.test('derToPem writes PEM that Node reads back', async t => {
  const der = pemToDer(pki.orderService.chain)
  t.same(pemToDer(derToPem(der)).map(d => d.toString('hex')), der.map(d => d.toString('hex')))
  t.match(derToPem([Buffer.alloc(48)]), /^-----BEGIN CERTIFICATE-----\n[A-Za-z0-9+/]{64}\n-----END CERTIFICATE-----\n$/)
})
