// The certificates of one proxy's run, made fresh with mtls-pki and written in the layout the example configs
// read from {{CERT_DIR}} (each example's README lists it).
import { rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { createTestPki, writeCertificateFiles } from 'mtls-pki'

export const TRUST_DOMAIN = 'mycompany.com'
export const spiffe = path => `spiffe://${TRUST_DOMAIN}/${path}`
/** The name in the certificates of the proxy (towards clients) and of the service (towards the proxy). */
export const SERVER_NAME = 'localhost'
const [SHARD_A, SHARD_B] = ['http://crl.mycompany.com/intermediate-a.crl', 'http://crl.mycompany.com/intermediate-b.crl']

const pemJoin = (...parts) => parts.map(part => part.endsWith('\n') ? part : `${part}\n`).join('')

/** Writes `name` atomically, as cert-manager and the kubelet do: a reader never sees half a file. */
async function replaceFile (file, text) {
  await writeFile(`${file}.tmp`, text, { mode: 0o600 })
  await rename(`${file}.tmp`, file)
}

/**
 * Makes the test PKI (createTestPki: the good client certificates and one of each kind of bad one, and two of CRL
 * shards: `revokedInShard`, `inShardB`) plus the proxy's two certificates and the service's, and writes into `certDir`:
 * - `ca.pem`, `crl.pem`: the trust (root) and the CRLs of root and intermediate (its full CRL and two shards), for the proxy and the service;
 * - `edge-chain.pem`, `edge-key.pem` (and `edge-combined.pem`, both in one file, for HAProxy): what the proxy shows clients;
 * - `proxy-chain.pem`, `proxy-key.pem` (and `proxy-combined.pem`): the proxy's own client certificate, `spiffe://mycompany.com/infra/<proxy>`;
 * - `app-chain.pem`, `app-key.pem`: the service's certificate (payment-service), which `rotateApp()` replaces.
 */
export async function writeProxyPki (certDir, proxyName) {
  const pki = await createTestPki({ trustDomain: TRUST_DOMAIN })
  const proxyIdentity = spiffe(`infra/${proxyName}`)
  const issueApp = () => pki.intermediate.issue({ usage: 'server', spiffeId: spiffe('production/payment-service'), dnsNames: [SERVER_NAME], ips: ['127.0.0.1'] })
  const [edge, proxy, app] = await Promise.all([
    pki.intermediate.issue({ usage: 'server', commonName: SERVER_NAME, dnsNames: [SERVER_NAME], ips: ['127.0.0.1'] }),
    pki.intermediate.issue({ usage: 'client', spiffeId: proxyIdentity }),
    issueApp()
  ])
  // Two more clients whose certificates name a CRL shard of the intermediate: one revoked, in its shard and in the
  // intermediate's full CRL, while the other shard, signed last, lists nothing of it. A verifier that let an issuer's
  // newest CRL decide believed it (ChainVerifier did, for forwarded certificates).
  const [revokedInShard, inShardB] = await Promise.all([
    pki.intermediate.issue({ usage: 'client', spiffeId: spiffe('production/revoked-in-shard'), crlDistributionPoints: [SHARD_A] }),
    pki.intermediate.issue({ usage: 'client', spiffeId: spiffe('production/in-shard-b'), crlDistributionPoints: [SHARD_B] })
  ])
  pki.intermediate.revoke(revokedInShard)
  const ago = seconds => new Date(Date.now() - seconds * 1000)
  const crls = [
    await pki.intermediate.createCrl({ thisUpdate: ago(120) }),
    await pki.intermediate.createCrl({ issuingDistributionPoint: SHARD_A, thisUpdate: ago(60) }),
    await pki.intermediate.createCrl({ issuingDistributionPoint: SHARD_B, thisUpdate: ago(1) }),
    pki.crl[1] // the root's
  ]
  const [, , appFiles] = await Promise.all([
    writeCertificateFiles(certDir, 'edge', edge),
    writeCertificateFiles(certDir, 'proxy', proxy),
    writeCertificateFiles(certDir, 'app', app)
  ])
  await Promise.all([
    writeFile(join(certDir, 'ca.pem'), pki.ca),
    writeFile(join(certDir, 'crl.pem'), pemJoin(...crls)),
    writeFile(join(certDir, 'edge-combined.pem'), pemJoin(edge.chain, edge.key), { mode: 0o600 }),
    writeFile(join(certDir, 'proxy-combined.pem'), pemJoin(proxy.chain, proxy.key), { mode: 0o600 })
  ])
  return {
    pki: { ...pki, crl: crls, revokedInShard, inShardB },
    certDir,
    proxyIdentity,
    proxy,
    edgeFingerprint256: edge.fingerprint256,
    app: { certFile: appFiles.chainFile, keyFile: appFiles.keyFile, caFile: join(certDir, 'ca.pem'), crlFile: join(certDir, 'crl.pem'), fingerprint256: app.fingerprint256 },
    /** Issues the service a new certificate and writes it over the old files; resolves with its fingerprint. */
    async rotateApp () {
      const next = await issueApp()
      await replaceFile(appFiles.keyFile, next.key)
      await replaceFile(appFiles.chainFile, next.chain)
      return next.fingerprint256
    }
  }
}
