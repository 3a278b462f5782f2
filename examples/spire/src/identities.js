// Who is who in this example: the SPIFFE IDs register.sh gives the two services' containers. Each service asks
// the Workload API for its own (createX509Source's `pick`, and `subject` for JWT-SVIDs), and order-service accepts
// only payment-service as the server it charges. test/config.test.js checks these against register.sh, the compose
// file and the policy.
export const TRUST_DOMAIN = 'mycompany.com'
export const PAYMENT_SERVICE_ID = 'spiffe://mycompany.com/production/payment-service'
export const ORDER_SERVICE_ID = 'spiffe://mycompany.com/production/order-service'
// The audience of the JWT-SVIDs payment-service accepts on its JWT-SVID hop: its own SPIFFE ID, so a token minted
// for another service cannot be replayed to it (and one minted for it, to no other).
export const JWT_AUDIENCE = PAYMENT_SERVICE_ID
