// The cost of one authorization decision with 1,000 ACL entries. Run `pnpm --filter fastify-mtls-authz bench` after `pnpm build`.
import { createTestPki } from 'mtls-pki'
import { toPeerIdentity } from 'mtls-core'
import { readPemBlocks } from 'mtls-core/internal'
// The decision's own functions, from the build (internal modules: the entry point exports the plugin).
import { compilePolicy } from '../dist/policy.js'
import { compileRouteRule, decide, peerPolicy } from '../dist/route-rule.js'

const ROUNDS = 7
const ITERATIONS = 500_000

const pki = await createTestPki()
const identity = toPeerIdentity(readPemBlocks(pki.orderService.certificate)[0].der)
const acl = []
for (let i = 0; i < 900; i++) acl.push({ identities: [`spiffe://mycompany.com/team-${i}/service-${i}`], roles: [`role-${i}`] })
for (let i = 0; i < 98; i++) acl.push({ identities: [`spiffe://mycompany.com/env-${i}/*/api`, `dns:*.svc-${i}.example.com`], roles: [`wild-${i}`] })
acl.push({ identities: ['spiffe://mycompany.com/production/order-service'], roles: ['payments:charge'] })
acl.push({ identities: ['spiffe://mycompany.com/production/**'], roles: ['payments:read'] })
const policy = compilePolicy({ acl, deny: ['spiffe://partner.org/**', 'dns:blocked.example.com'] })
const rule = compileRouteRule({ roles: ['payments:charge'], deny: ['spiffe://mycompany.com/production/inventory-service'] }, 'bench')
const cached = peerPolicy(policy, identity)

function measure (label, fn, target) {
  for (let i = 0; i < 10_000; i++) fn()
  const perCall = []
  for (let round = 0; round < ROUNDS; round++) {
    const start = process.hrtime.bigint()
    for (let i = 0; i < ITERATIONS; i++) fn()
    perCall.push(Number(process.hrtime.bigint() - start) / ITERATIONS / 1000)
  }
  perCall.sort((a, b) => a - b)
  console.log(`| ${label.padEnd(62)} | ${perCall[Math.floor(ROUNDS / 2)].toFixed(3).padStart(7)} | ${target.padStart(6)} |`)
}

console.log(`fastify-mtls-authz on Node ${process.version}; ${acl.length} ACL entries (1,098 patterns); median of ${ROUNDS} rounds (µs)\n`)
console.log('| what                                                           |      µs | target |')
console.log('| -------------------------------------------------------------- | ------: | -----: |')
measure('decision, the peer\'s roles and policy deny cached (every request)', () => decide(rule, policy, identity, cached), '< 1')
measure('decision with the lookup (first request of a connection)', () => decide(rule, policy, identity, null), '< 1')
