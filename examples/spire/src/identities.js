// Who is who in this example: the SPIFFE IDs register.sh gives the two services' containers. Each service asks
// the Workload API for its own (createX509Source's `pick`), and order-service accepts only payment-service as
// the server it charges. test/config.test.js checks these against register.sh, the compose file and the policy.
export const TRUST_DOMAIN = 'mycompany.com'
export const PAYMENT_SERVICE_ID = 'spiffe://mycompany.com/production/payment-service'
export const ORDER_SERVICE_ID = 'spiffe://mycompany.com/production/order-service'
