#!/bin/sh
# Registers the example with the SPIRE server (started with `docker compose up -d spire-server`):
#   1. writes the server's CA bundle to spire/bootstrap.crt, which the agent authenticates the server with;
#   2. generates a one-time join token for the agent and writes it to .env (SPIRE_JOIN_TOKEN), where
#      docker compose reads it;
#   3. creates one workload entry per service: its SPIFFE ID, the agent as parent, and the docker label the
#      service's container carries in docker-compose.yaml as selector; X.509-SVIDs live X509_SVID_TTL seconds,
#      JWT-SVIDs JWT_SVID_TTL seconds. JWT-SVIDs need nothing else registered: the agent signs one (through the
#      server) for whatever audience its workload asks, under the entry's SPIFFE ID.
# Running it again replaces the two entries and makes a new token (harmless once the agent has attested: it
# keeps its own SVID in its volume and ignores the token).
set -eu

cd "$(dirname "$0")"

X509_SVID_TTL=300
JWT_SVID_TTL=300
AGENT_ID=spiffe://mycompany.com/node/docker-host

spire_server () {
  docker compose exec -T spire-server /opt/spire/bin/spire-server "$@"
}

# register <SPIFFE ID> <selector>: replaces the entries of that SPIFFE ID with one entry.
register () {
  for entry_id in $(spire_server entry show -spiffeID "$1" | sed -n 's/^Entry ID *: *//p'); do
    spire_server entry delete -entryID "$entry_id" > /dev/null
  done
  spire_server entry create \
    -parentID "$AGENT_ID" \
    -spiffeID "$1" \
    -selector "$2" \
    -x509SVIDTTL "$X509_SVID_TTL" \
    -jwtSVIDTTL "$JWT_SVID_TTL"
}

echo "waiting for spire-server..."
tries=0
until spire_server healthcheck > /dev/null 2>&1; do
  tries=$((tries + 1))
  if [ "$tries" -ge 30 ]; then
    echo "spire-server is not healthy after 60 s: is it running? (docker compose up -d spire-server)" >&2
    exit 1
  fi
  sleep 2
done

spire_server bundle show > spire/bootstrap.crt.tmp
mv spire/bootstrap.crt.tmp spire/bootstrap.crt
echo "wrote spire/bootstrap.crt (the trust bundle of mycompany.com, for the agent's first contact)"

# Prints "Token: <uuid>"; the last word is the token.
token=$(spire_server token generate -spiffeID "$AGENT_ID" -ttl 600 | awk '/Token/ { print $NF }')
if [ -z "$token" ]; then
  echo "spire-server token generate printed no token" >&2
  exit 1
fi
printf 'SPIRE_JOIN_TOKEN=%s\n' "$token" > .env
echo "wrote .env (a join token for the agent, valid 600 s and once: start the agent now)"

register spiffe://mycompany.com/production/payment-service docker:label:com.mycompany.workload:payment-service
register spiffe://mycompany.com/production/order-service docker:label:com.mycompany.workload:order-service

echo "done: docker compose up"
