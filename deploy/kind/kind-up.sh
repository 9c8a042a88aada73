#!/usr/bin/env bash
# Create the kind cluster "payouts" and install the whole stack into it:
#   deploy/kind/kind-up.sh                  # cluster, images, PostgreSQL, RabbitMQ, the chart
#   deploy/kind/kind-up.sh --cluster-only   # only the cluster (then `tilt up` does the rest)
#
# Needs docker (or podman with KIND_EXPERIMENTAL_PROVIDER=podman and CONTAINER_ENGINE=podman),
# kind, and helm + kubectl (scripts/install-helm.sh puts both into .tools/bin).
# Idempotent: an existing cluster is reused, the release is upgraded.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"

CLUSTER="${KIND_CLUSTER:-payouts}"
NAMESPACE="${NAMESPACE:-payouts}"
RELEASE="${RELEASE:-payout-service}"
ENGINE="${CONTAINER_ENGINE:-docker}"
CONTEXT="kind-$CLUSTER"
PATH="$ROOT/.tools/bin:$PATH"

need() {
    command -v "$1" >/dev/null 2>&1 || {
        echo "kind-up: '$1' is needed: $2" >&2
        exit 1
    }
}
need "$ENGINE" "install Docker (or set CONTAINER_ENGINE=podman)"
need kind "see https://kind.sigs.k8s.io/docs/user/quick-start/#installation"
need helm "run scripts/install-helm.sh"
need kubectl "run scripts/install-helm.sh"

if kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
    echo "kind-up: cluster $CLUSTER exists, reusing it"
else
    kind create cluster --name "$CLUSTER" --config deploy/kind/cluster.yaml --wait 120s
fi
kubectl --context "$CONTEXT" apply -f deploy/kind/namespace.yaml

if [ "${1:-}" = "--cluster-only" ]; then
    echo "kind-up: cluster ready (context $CONTEXT); run 'tilt up' next"
    exit 0
fi

# A fresh tag per run, so that `helm upgrade` rolls the pods onto the new images.
TAG="dev-$(date +%Y%m%d%H%M%S)"
for target in api processor; do
    "$ENGINE" build --target "$target" --tag "payout-$target:$TAG" .
    if [ "$ENGINE" = docker ]; then
        kind load docker-image --name "$CLUSTER" "payout-$target:$TAG"
    else
        archive="$(mktemp)"
        "$ENGINE" save --output "$archive" "payout-$target:$TAG"
        kind load image-archive --name "$CLUSTER" "$archive"
        rm -f "$archive"
    fi
done

kubectl --context "$CONTEXT" apply -f deploy/kind/postgres.yaml -f deploy/kind/rabbitmq.yaml
kubectl --context "$CONTEXT" -n "$NAMESPACE" rollout status statefulset/postgres --timeout=180s
kubectl --context "$CONTEXT" -n "$NAMESPACE" rollout status statefulset/rabbitmq --timeout=300s

helm upgrade --install "$RELEASE" deploy/helm/payout-service \
    --kube-context "$CONTEXT" --namespace "$NAMESPACE" \
    --values deploy/kind/values-dev.yaml \
    --set-string image.tag="$TAG" \
    --wait --timeout 5m

echo
echo "kind-up: done. API: http://127.0.0.1:8080/healthz  (kubectl context: $CONTEXT)"
