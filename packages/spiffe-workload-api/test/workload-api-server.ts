// The package's test Workload API server (`spiffe-workload-api/testing`), started per test and closed at its teardown.
import { X509Certificate } from 'node:crypto'
import type { IssuedCertificate } from 'mtls-pki'
import type { Teardown } from 'mtls-test-support'
import { TestWorkloadApi as Server, type TestWorkloadApiOptions } from '../src/testing.js'

export { pemToDer, svidMessage } from '../src/testing.js'
/** The server, started for one test and closed at its teardown. */
export const TestWorkloadApi = {
  async start (t: Teardown, options: TestWorkloadApiOptions = {}): Promise<Server> {
    const api = await Server.start(options)
    t.teardown(() => api.close())
    return api
  }
}

/** The leaf's DER, for comparisons. */
export function leafDer (issued: IssuedCertificate): Buffer {
  return Buffer.from(new X509Certificate(issued.certificate).raw)
}
