// nginx in front of the service, with the configs of examples/nginx: the URL-encoded PEM nginx puts in
// X-SSL-Client-Cert ($ssl_client_escaped_cert), read with fastify-mtls-identity's 'nginx' preset.
import { execFile } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import t from 'tap'
import { hangLimit, until } from './hang-limit.js'
import { findProxy } from './proxy-binaries.js'
import { childPids, spawnProxy } from './proxy-process.js'
import { proxySuite } from './proxy-suite.js'

const run = promisify(execFile)
const example = name => fileURLToPath(new URL(`../../nginx/${name}`, import.meta.url))
const found = findProxy('nginx')
// .taprc's limit for a proxy's file, scaled.
t.setTimeout(hangLimit(60_000))

t.test('nginx', { skip: found.skip ?? false }, async t => {
  await proxySuite(t, {
    name: 'nginx',
    templates: { mtls: example('nginx.conf'), http: example('nginx-plain-upstream.conf') },
    configName: 'nginx.conf',
    formats: [{ label: 'X-SSL-Client-Cert, pem-url-encoded (forwarded: \'nginx\')', forwarded: 'nginx' }],
    // ssl_verify_client optional: nginx answers a certificate that does not verify with 400 itself.
    refusal: { status: 400 },
    checksCrl: true,
    reloadHow: 'nginx -s reload',
    // The old workers close their idle keep-alive connections at once (nginx has no option to wait for a last request).
    reloadClosesIdleConnections: true,
    async start ({ config, runDir, values, ready }) {
      // -p: the prefix, so that nothing is looked for or written under /etc/nginx or /var.
      const args = ['-c', config, '-p', `${runDir}/`]
      const proc = await spawnProxy(found.path, [...args, '-g', 'daemon off;'], { ready })
      const master = async () => Number((await readFile(join(runDir, 'nginx.pid'), 'utf8')).trim())
      return {
        stop: proc.stop,
        output: proc.output,
        /** nginx -s reload: new workers take the listening sockets; the old ones finish their requests, then exit. */
        async reload () {
          const pid = await master()
          const before = await childPids(pid)
          await run(found.path, ['-s', 'reload', ...args], { timeout: hangLimit(30_000) })
          let now = before
          await until(async () => {
            now = await childPids(pid)
            return now.length > 0 && !now.some(worker => before.includes(worker))
          }, () => `nginx -s reload to replace workers ${before.join(',')}\n${proc.output()}`)
          return `workers ${before.join(',')} replaced by ${now.join(',')}`
        }
      }
    }
  })
})
