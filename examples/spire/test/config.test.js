// Nothing here runs SPIRE (no docker where the tests run): these tests check what can drift between the compose
// file, the SPIRE configuration, register.sh and the services, each assertion naming the files it ties together.
import { existsSync, readFileSync } from 'node:fs'
import { posix } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { parseDocument } from 'yaml'
import { policy } from '../../payment-mesh/src/policy.js'
import { JWT_AUDIENCE, ORDER_SERVICE_ID, PAYMENT_SERVICE_ID, TRUST_DOMAIN } from '../src/identities.js'

const here = posix.resolve(fileURLToPath(new URL('..', import.meta.url)))
const read = name => readFileSync(new URL(`../${name}`, import.meta.url), 'utf8')

const compose = (() => {
  const doc = parseDocument(read('docker-compose.yaml'))
  if (doc.errors.length > 0) throw doc.errors[0]
  return doc.toJS()
})()
const serverConf = read('spire/server.conf')
const agentConf = read('spire/agent.conf')
const registerSh = read('register.sh')

/** The string value of `key = "value"` in an HCL block (the first occurrence, comments skipped); throws when absent. */
function hcl (text, key) {
  const uncommented = text.split('\n').filter(line => !/^\s*(#|\/\/)/.test(line)).join('\n')
  const match = new RegExp(`^\\s*${key}\\s*=\\s*"([^"]*)"`, 'm').exec(uncommented)
  if (match === null) throw new Error(`no ${key} = "..." found`)
  return match[1]
}

/** register.sh's `register <SPIFFE ID> <selector>` calls (not the function's definition, `register () {`). */
const registrations = [...registerSh.matchAll(/^register[ \t]+([^\s(]\S*)[ \t]+(\S+)[ \t]*$/gm)].map(([, spiffeId, selector]) => ({ spiffeId, selector }))
/** A shell variable assigned in register.sh (`NAME=value`). */
const shellVar = name => {
  const match = new RegExp(`^${name}=(\\S+)$`, 'm').exec(registerSh)
  if (match === null) throw new Error(`register.sh assigns no ${name}`)
  return match[1]
}
const trustDomainOf = spiffeId => /^spiffe:\/\/([^/]+)\//.exec(spiffeId)?.[1]
const workloads = ['payment-service', 'order-service']
const expectedId = { 'payment-service': PAYMENT_SERVICE_ID, 'order-service': ORDER_SERVICE_ID }
/** A service's volume mounts, long or short syntax, as { source, target }. */
const mounts = service => (compose.services[service].volumes ?? []).map(volume => {
  if (typeof volume !== 'string') return { source: volume.source, target: volume.target }
  const [source, target] = volume.split(':')
  return { source, target }
})

t.test('the compose file has the four services, the images pinned to a SPIRE 1.x release', async t => {
  t.same(Object.keys(compose.services).sort(), ['order-service', 'payment-service', 'spire-agent', 'spire-server'])
  t.match(compose.services['spire-server'].image, /^ghcr\.io\/spiffe\/spire-server:1\.\d+\.\d+$/)
  t.match(compose.services['spire-agent'].image, /^ghcr\.io\/spiffe\/spire-agent:1\.\d+\.\d+$/)
  t.equal(compose.services['spire-agent'].image.split(':')[1], compose.services['spire-server'].image.split(':')[1], 'agent and server of the same release')
})

t.test('the SPIRE configuration files are the ones the containers are started with', async t => {
  for (const [service, file] of [['spire-server', 'server.conf'], ['spire-agent', 'agent.conf']]) {
    const { command } = compose.services[service]
    const config = command[command.indexOf('-config') + 1]
    const mount = mounts(service).find(({ target }) => config.startsWith(`${target}/`))
    t.ok(mount, `${service}: -config ${config} is inside a mounted directory`)
    t.equal(mount.source, './spire', `${service}: that directory is ./spire`)
    t.equal(posix.relative(mount.target, config), file, `${service}: -config names spire/${file}`)
    t.ok(existsSync(new URL(`../spire/${file}`, import.meta.url)), `spire/${file} exists`)
  }
})

t.test('the agent socket: agent.conf, the shared volume and SPIFFE_ENDPOINT_SOCKET agree', async t => {
  const socketPath = hcl(agentConf, 'socket_path')
  t.match(socketPath, /^\/.+\/[^/]+\.sock$/, 'an absolute socket path')
  const socketDir = posix.dirname(socketPath)
  const agentMount = mounts('spire-agent').find(({ target }) => target === socketDir)
  t.ok(agentMount, `spire-agent mounts a volume at ${socketDir}`)
  t.ok(Object.hasOwn(compose.volumes ?? {}, agentMount.source), `${agentMount.source} is a named volume of the compose file`)
  for (const service of workloads) {
    const mount = mounts(service).find(({ source }) => source === agentMount.source)
    t.ok(mount, `${service} mounts ${agentMount.source}`)
    t.equal(posix.join(mount.target, posix.basename(socketPath)), socketPath, `${service} sees the socket where agent.conf puts it`)
    t.equal(compose.services[service].environment.SPIFFE_ENDPOINT_SOCKET, `unix://${socketPath}`, `${service}: SPIFFE_ENDPOINT_SOCKET`)
  }
})

t.test('one trust domain: server.conf, agent.conf, register.sh and the services', async t => {
  t.equal(hcl(serverConf, 'trust_domain'), TRUST_DOMAIN, 'server.conf')
  t.equal(hcl(agentConf, 'trust_domain'), TRUST_DOMAIN, 'agent.conf')
  t.equal(trustDomainOf(shellVar('AGENT_ID')), TRUST_DOMAIN, 'register.sh: the agent\'s ID')
  t.equal(registrations.length, 2, 'register.sh registers two workloads')
  for (const { spiffeId } of registrations) t.equal(trustDomainOf(spiffeId), TRUST_DOMAIN, `register.sh: ${spiffeId}`)
})

t.test('register.sh: the agent the entries hang off is the one the join token attests', async t => {
  t.match(registerSh, /token generate -spiffeID "\$AGENT_ID"/, 'the token gives the agent AGENT_ID')
  t.match(registerSh, /-parentID "\$AGENT_ID"/, 'the entries\' parent is AGENT_ID')
  t.match(registerSh, /-x509SVIDTTL "\$X509_SVID_TTL"/, 'the entries carry the short SVID TTL')
  const ttl = Number(shellVar('X509_SVID_TTL'))
  t.ok(ttl >= 60 && ttl <= 900, `an SVID TTL of ${ttl} s: short enough to watch rotations`)
  t.match(registerSh, /-jwtSVIDTTL "\$JWT_SVID_TTL"/, 'the entries carry the JWT-SVID TTL')
  const jwtTtl = Number(shellVar('JWT_SVID_TTL'))
  t.ok(jwtTtl >= 60 && jwtTtl <= 900, `a JWT-SVID TTL of ${jwtTtl} s: a bearer token lives minutes`)
  t.match(compose.services['spire-agent'].command.join(' '), /-joinToken \$\{SPIRE_JOIN_TOKEN:-\}/, 'the agent reads the token register.sh writes')
  t.match(registerSh, /SPIRE_JOIN_TOKEN=%s/, 'register.sh writes SPIRE_JOIN_TOKEN')
})

t.test('register.sh writes the bootstrap bundle where agent.conf reads it', async t => {
  const bundlePath = hcl(agentConf, 'trust_bundle_path')
  const mount = mounts('spire-agent').find(({ target }) => bundlePath.startsWith(`${target}/`))
  t.ok(mount, `${bundlePath} is inside a mounted directory`)
  const onHost = posix.join(mount.source, posix.relative(mount.target, bundlePath))
  t.equal(mount.source, './spire', 'from ./spire')
  t.ok(registerSh.includes(`bundle show > ${onHost}.tmp\nmv ${onHost}.tmp ${onHost}\n`), `register.sh writes ${onHost}`)
})

t.test('selectors: each entry matches the labels of exactly the container that expects its SPIFFE ID', async t => {
  t.match(agentConf, /^\s*WorkloadAttestor\s+"docker"/m, 'agent.conf enables the docker workload attestor')
  t.equal(compose.services['spire-agent'].pid, 'host', 'the agent sees the workloads\' pids')
  t.ok(mounts('spire-agent').some(({ target }) => target === '/var/run/docker.sock'), 'the agent reaches the Docker API')
  for (const { spiffeId, selector } of registrations) {
    const match = /^docker:label:([^:]+):(.+)$/.exec(selector)
    t.ok(match, `${spiffeId}: a docker:label selector (${selector})`)
    const [, key, value] = match
    const holders = Object.keys(compose.services).filter(service => compose.services[service].labels?.[key] === value)
    t.same(holders.length, 1, `${selector}: exactly one container carries ${key}=${value}`)
    t.equal(expectedId[holders[0]], spiffeId, `${holders[0]} expects ${spiffeId}`)
  }
  t.same(registrations.map(({ spiffeId }) => spiffeId).sort(), [ORDER_SERVICE_ID, PAYMENT_SERVICE_ID].sort(), 'exactly the two IDs the services expect')
})

t.test('the services pick the IDs register.sh creates, and order-service requires payment-service\'s', async t => {
  const paymentService = read('src/payment-service.js')
  const orderService = read('src/order-service.js')
  t.match(paymentService, /createX509Source\(\{ pick: PAYMENT_SERVICE_ID(,| \})/, 'payment-service serves only as PAYMENT_SERVICE_ID')
  t.match(orderService, /createX509Source\(\{ pick: ORDER_SERVICE_ID(,| \})/, 'order-service acts only as ORDER_SERVICE_ID')
  t.match(orderService, /createMtlsAgent\(\{[^}]*verifyHostname: false, server: PAYMENT_SERVICE_ID \}\)/, 'order-service requires PAYMENT_SERVICE_ID of the server')
  const registered = new Set(registrations.map(({ spiffeId }) => spiffeId))
  t.ok(registered.has(PAYMENT_SERVICE_ID), `register.sh creates ${PAYMENT_SERVICE_ID}`)
  t.ok(registered.has(ORDER_SERVICE_ID), `register.sh creates ${ORDER_SERVICE_ID}`)
  const charge = policy.acl.filter(entry => entry.identities.includes(ORDER_SERVICE_ID)).flatMap(entry => entry.roles)
  t.ok(charge.includes('payments:charge'), 'payment-service\'s policy lets order-service charge')
})

t.test('the services run this directory\'s scripts from the mounted checkout', async t => {
  const repoRoot = posix.resolve(here, '../..')
  for (const service of workloads) {
    const { working_dir: workingDir, command, environment, user } = compose.services[service]
    const repoMount = mounts(service).find(({ target }) => workingDir.startsWith(`${target}/`))
    t.ok(repoMount, `${service}: its working_dir is inside a mount`)
    t.equal(posix.resolve(here, repoMount.source), repoRoot, `${service}: the mount is the repository root`)
    t.equal(posix.resolve(repoRoot, posix.relative(repoMount.target, workingDir)), here, `${service}: working_dir is examples/spire`)
    t.same(command, ['node', `src/${service}.js`], `${service}: runs src/${service}.js`)
    t.ok(existsSync(new URL(`../src/${service}.js`, import.meta.url)), `src/${service}.js exists`)
    t.not(user, undefined, `${service}: not root`)
    t.equal(compose.services[service].image.split(':')[0], 'node')
    if (service === 'payment-service') {
      t.equal(environment.HOST, '0.0.0.0', 'payment-service listens on the container\'s network')
      t.equal(compose.services['order-service'].environment.PAYMENTS_URL, `https://payment-service:${environment.PORT}`, 'order-service calls payment-service\'s port')
    }
  }
})

t.test('the JWT-SVID hop: payment-service\'s second port, the URL order-service calls, and one audience on both sides', async t => {
  const paymentEnv = compose.services['payment-service'].environment
  const orderEnv = compose.services['order-service'].environment
  t.not(paymentEnv.JWT_PORT, undefined, 'payment-service sets JWT_PORT')
  t.not(paymentEnv.JWT_PORT, paymentEnv.PORT, 'the hop is a port of its own, beside the mTLS one')
  t.equal(orderEnv.PAYMENTS_JWT_URL, `https://payment-service:${paymentEnv.JWT_PORT}`, 'order-service calls the hop\'s port')
  t.equal(JWT_AUDIENCE, PAYMENT_SERVICE_ID, 'the audience is payment-service\'s own SPIFFE ID')
  const paymentService = read('src/payment-service.js')
  const orderService = read('src/order-service.js')
  t.match(paymentService, /jwtSvid: \{ source: jwtSource, audience: JWT_AUDIENCE \}/, 'payment-service accepts tokens for JWT_AUDIENCE')
  t.match(paymentService, /paymentApp\('optional', \{ jwtSvid:/, 'the hop needs no client certificate')
  t.match(orderService, /jwtSvidInterceptor\(\{ source: ownTokens, audience: JWT_AUDIENCE \}\)/, 'order-service sends tokens for JWT_AUDIENCE')
  t.match(orderService, /jwtSource\.fetchJWTSVID\(\{ audience, subject: ORDER_SERVICE_ID \}\)/, 'order-service asks for its own SPIFFE ID\'s tokens only')
  t.match(orderService, /serverAuthAgent\(\{ source, trustDomain: TRUST_DOMAIN, serverId: PAYMENT_SERVICE_ID \}\)/, 'and requires payment-service\'s SPIFFE ID of the server there too')
  t.match(hcl(serverConf, 'default_jwt_svid_ttl'), /^\d+[smh]$/, 'server.conf sets a JWT-SVID TTL')
})
