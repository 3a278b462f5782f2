// spiffe-workload-api/testing: the test Workload API server users get, beyond what the client tests exercise.
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import * as grpc from '@grpc/grpc-js'
import t from 'tap'
import { createTestPki } from 'mtls-pki'
import { hangLimit } from 'mtls-test-support'
import { createX509Source } from '../src/index.js'
import { SECURITY_HEADER, workloadServiceDefinition } from '../src/proto.js'
import { TestWorkloadApi, pemToDer, svidMessage } from '../src/testing.js'

const pki = await createTestPki()
const ORDER = 'spiffe://mycompany.com/production/order-service'

t.test('the JWT methods refuse a call without the security header, as the X.509 ones do', async t => {
  const api = await TestWorkloadApi.start({ tcp: true })
  t.teardown(() => api.close())
  t.match(api.endpoint, /^tcp:\/\/127\.0\.0\.1:\d+$/)
  const Client = grpc.makeGenericClientConstructor(workloadServiceDefinition(), 'SpiffeWorkloadAPI')
  const client = new Client(api.address, grpc.credentials.createInsecure())
  t.teardown(() => client.close())
  const empty = (): Buffer => Buffer.alloc(0)
  for (const method of ['FetchJWTSVID', 'ValidateJWTSVID'] as const) {
    const error = await new Promise<grpc.ServiceError | null>(resolve => {
      client.makeUnaryRequest(workloadServiceDefinition()[method]!.path, empty, (b: Buffer) => b, {}, new grpc.Metadata(), (err: grpc.ServiceError | null) => resolve(err))
    })
    t.equal(error?.code, grpc.status.INVALID_ARGUMENT, method)
  }
  const stream = client.makeServerStreamRequest(workloadServiceDefinition().FetchJWTBundles!.path, empty, (b: Buffer) => b, {}, new grpc.Metadata())
  const [error] = await once(stream, 'error') as [grpc.ServiceError]
  t.equal(error.code, grpc.status.INVALID_ARGUMENT, 'FetchJWTBundles')
  t.equal(api.refusedWithoutHeader, 3)
  t.equal(SECURITY_HEADER, 'workload.spiffe.io')
})

t.test('tcp: the agent comes back on the same port; a socket path of your own is kept by close()', async t => {
  const api = await TestWorkloadApi.start({ tcp: true })
  t.teardown(() => api.close())
  api.setX509({ svids: [svidMessage(ORDER, pki.orderService)] })
  const endpoint = api.endpoint
  api.stop()
  await api.listen()
  await api.listen()
  t.equal(api.endpoint, endpoint, 'same address')
  const source = await createX509Source({ endpoint, timeoutMs: hangLimit(30_000) })
  t.teardown(() => source.close())
  t.equal(source.current.svid.spiffeId, ORDER)

  const dir = await mkdtemp(join(tmpdir(), 'own-socket-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const own = await TestWorkloadApi.start({ socketPath: join(dir, 'api.sock') })
  t.equal(own.endpoint, `unix://${join(dir, 'api.sock')}`)
  await own.close()
  t.ok(existsSync(dir), 'the directory given is not removed')
  const made = await TestWorkloadApi.start()
  await made.close()
  t.notOk(existsSync(dirname(made.endpoint.slice('unix://'.length))), 'a directory it made is removed')
})

t.test('pemToDer reads certificates, or another label', async t => {
  t.equal(pemToDer(pki.orderService.chain).length, 2)
  t.equal(pemToDer(pki.crl.join(''), 'X509 CRL').length, pki.crl.length)
  t.same(pemToDer(pki.crl.join('')), [], 'no certificate in CRLs')
})
