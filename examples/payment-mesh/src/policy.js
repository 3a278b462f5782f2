// payment-service's authorization, as data: who holds which role (fastify-mtls-authz's policy) and which role
// each route asks for. payment-service enforces it; the demo prints it before using it.

export const policy = {
  acl: [
    { identities: ['spiffe://mycompany.com/production/order-service'], roles: ['payments:charge'] },
    { identities: ['spiffe://mycompany.com/production/**'], roles: ['payments:read'] }
  ],
  defaultPolicy: 'deny'
}

/** The body a charge must have (POST /api/payments/charge). */
export const chargeSchema = {
  body: {
    type: 'object',
    required: ['orderId', 'amount', 'currency'],
    additionalProperties: false,
    properties: {
      orderId: { type: 'string', minLength: 1, maxLength: 64 },
      amount: { type: 'integer', minimum: 1 },
      currency: { type: 'string', enum: ['EUR', 'USD'] }
    }
  }
}

/** Each route's `config.mtls`. */
export const routeRules = {
  charge: { method: 'POST', url: '/api/payments/charge', mtls: { roles: ['payments:charge'] } },
  read: { method: 'GET', url: '/api/payments/:id', mtls: { roles: ['payments:read'] } },
  // RFC 8705: the caller's access token (from token-issuer) must be bound to the certificate it presents.
  receipt: { method: 'GET', url: '/api/payments/:id/receipt', mtls: { roles: ['payments:read'], boundToken: true } },
  health: { method: 'GET', url: '/health', mtls: { public: true } }
}

/** The policy and the routes' rules as lines a person reads. */
export function describePolicy () {
  const width = Math.max(...policy.acl.flatMap(entry => entry.identities.map(identity => identity.length)))
  const holders = policy.acl.flatMap(entry => entry.identities.map(identity => `${identity.padEnd(width)}  holds ${entry.roles.join(', ')}`))
  const anyoneElse = `${'anyone else'.padEnd(width)}  holds no role (a client without a verified certificate has no identity at all)`
  const routes = Object.values(routeRules).map(({ method, url, mtls }) =>
    `${`${method} ${url}`.padEnd(width)}  ${mtls.public === true ? 'public: no certificate needed' : `needs ${mtls.roles.join(' or ')}${mtls.boundToken === true ? ' and an access token bound to its certificate' : ''}`}`)
  return [...holders, anyoneElse, ...routes, `a route that names no roles: ${policy.defaultPolicy} (defaultPolicy)`]
}
