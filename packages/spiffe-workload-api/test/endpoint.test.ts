import t from 'tap'
import { resolveWorkloadEndpoint } from '../src/endpoint.js'
import { WorkloadApiError, parseWorkloadEndpoint } from '../src/index.js'

t.test('unix:///path gives the socket path and a gRPC unix target', async t => {
  t.same(parseWorkloadEndpoint('unix:///run/spire/sockets/agent.sock'), { kind: 'unix', path: '/run/spire/sockets/agent.sock', target: 'unix:/run/spire/sockets/agent.sock', uri: 'unix:///run/spire/sockets/agent.sock' })
  t.same(parseWorkloadEndpoint('unix:/run/spire/sockets/agent.sock'), { kind: 'unix', path: '/run/spire/sockets/agent.sock', target: 'unix:/run/spire/sockets/agent.sock', uri: 'unix:/run/spire/sockets/agent.sock' }, 'unix:/path, no authority either')
})

t.test('tcp://IP:port gives host and port, IPv4 and IPv6', async t => {
  t.same(parseWorkloadEndpoint('tcp://127.0.0.1:8081'), { kind: 'tcp', host: '127.0.0.1', port: 8081, target: 'ipv4:127.0.0.1:8081', uri: 'tcp://127.0.0.1:8081' })
  t.same(parseWorkloadEndpoint('tcp://[::1]:8081'), { kind: 'tcp', host: '::1', port: 8081, target: 'ipv6:[::1]:8081', uri: 'tcp://[::1]:8081' })
})

t.test('every form the Workload Endpoint specification does not allow is refused with ERR_MTLS_WORKLOAD_ENDPOINT_INVALID', async t => {
  const invalid = [
    '', '/run/agent.sock', 'agent.sock', 'unix:agent.sock', 'unix:run/agent.sock', 'unix://host/run/agent.sock', 'unix:///',
    'unix:///run/agent.sock?x=1', 'unix:///run/agent.sock#frag', 'unix://user@/run/agent.sock',
    'tcp://localhost:8081', 'tcp://127.0.0.1', 'tcp://127.0.0.1:0', 'tcp://127.0.0.1:8081/path', 'tcp://127.0.0.1:8081/',
    'tcp://user:pw@127.0.0.1:8081', 'tcp://127.0.0.1:8081?q', 'tcp://127.0.0.1:8081#f', 'http://127.0.0.1:8081', 'tcp://',
    '::not a uri'
  ]
  for (const value of invalid) {
    t.throws(() => parseWorkloadEndpoint(value), { code: 'ERR_MTLS_WORKLOAD_ENDPOINT_INVALID' }, JSON.stringify(value))
  }
  const error = t.throws(() => parseWorkloadEndpoint('tcp://localhost:8081'))
  t.ok(error instanceof WorkloadApiError)
  t.match(String((error as Error).message), /IP address/)
})

t.test('the option wins over SPIFFE_ENDPOINT_SOCKET, which is read when no option is given', async t => {
  const env = { SPIFFE_ENDPOINT_SOCKET: 'unix:///from/env.sock' }
  t.equal(resolveWorkloadEndpoint(undefined, env).target, 'unix:/from/env.sock')
  t.equal(resolveWorkloadEndpoint('tcp://127.0.0.1:1', env).target, 'ipv4:127.0.0.1:1')
  t.throws(() => resolveWorkloadEndpoint(undefined, {}), { code: 'ERR_MTLS_WORKLOAD_ENDPOINT_INVALID', message: /SPIFFE_ENDPOINT_SOCKET/ })
})
