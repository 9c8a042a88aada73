#!/usr/bin/env bash
# Delete the kind cluster created by deploy/kind/kind-up.sh (and everything in it).
set -euo pipefail

CLUSTER="${KIND_CLUSTER:-payouts}"

if ! command -v kind >/dev/null 2>&1; then
    echo "kind-down: 'kind' is not installed; nothing to delete" >&2
    exit 0
fi
if kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
    kind delete cluster --name "$CLUSTER"
else
    echo "kind-down: no cluster named $CLUSTER"
fi
