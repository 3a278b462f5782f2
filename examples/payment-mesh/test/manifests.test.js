import { readFile } from 'node:fs/promises'
import t from 'tap'
import { parseAllDocuments } from 'yaml'

const read = async name => parseAllDocuments(await readFile(new URL(`../../kubernetes/${name}`, import.meta.url), 'utf8')).map(doc => {
  if (doc.errors.length > 0) throw doc.errors[0]
  return doc.toJS()
})

t.test('the Kubernetes manifests parse, with the expected kinds and the fields fastify-mtls relies on', async t => {
  const [issuer, certificate] = await read('cert-manager.yaml')
  t.match(issuer, { apiVersion: 'cert-manager.io/v1', kind: 'Issuer' })
  t.match(certificate, { kind: 'Certificate', spec: { duration: '2160h', renewBefore: '720h', uris: ['spiffe://mycompany.com/production/payment-service'], secretName: 'payment-service-tls' } })
  const [deployment, service] = await read('deployment.yaml')
  t.match(deployment, { apiVersion: 'apps/v1', kind: 'Deployment' })
  const pod = deployment.spec.template.spec
  t.equal(pod.volumes[0].secret.secretName, certificate.spec.secretName, 'the Deployment mounts the Certificate\'s secret')
  t.equal(pod.containers[0].volumeMounts[0].mountPath, '/etc/tls')
  t.match(pod.containers[0].readinessProbe, { httpGet: { path: '/health', scheme: 'HTTPS' } })
  t.match(service, { kind: 'Service' })
  const [policy] = await read('network-policy.yaml')
  t.match(policy, { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', spec: { policyTypes: ['Ingress'] } })
})

// The nginx example is run against a real nginx by examples/proxies, with HAProxy's and Caddy's.
