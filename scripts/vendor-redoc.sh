#!/usr/bin/env bash
# Refresh the vendored Redoc bundle that the API serves at /api/schema/redoc/.
#
# Redoc has no PyPI package, so its standalone bundle (with its licences) is committed under
# services/api/src/payout_api/openapi/static/redoc/ and this script is how it got there: it takes the
# pinned version from the npm registry, checks the tarball against the pinned integrity hash
# and copies the files. A fresh clone, `make run` and the image need nothing more.
#
#   scripts/vendor-redoc.sh            # re-vendor the pinned version (no change expected)
#   REDOC_VERSION=2.5.5 REDOC_INTEGRITY=sha512-... scripts/vendor-redoc.sh   # upgrade
set -euo pipefail

VERSION="${REDOC_VERSION:-2.5.4}"
INTEGRITY="${REDOC_INTEGRITY:-sha512-M6jWhG1qoBnH6TFmzJnstyCZ87HmOY/UzDm78mHiYihEdlV/YcS9ogOo1NlElnJMeLsyxHFe2yFc4sNjHTrABQ==}"

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DEST="$ROOT/services/api/src/payout_api/openapi/static/redoc"

if ! command -v npm >/dev/null 2>&1; then
    echo "vendor-redoc: npm is needed to fetch redoc@$VERSION (apt-get install npm)" >&2
    exit 1
fi

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

(cd "$WORK" && npm pack --silent "redoc@$VERSION" >/dev/null)
TARBALL="$WORK/redoc-$VERSION.tgz"
ACTUAL="sha512-$(openssl dgst -sha512 -binary "$TARBALL" | base64 -w0)"
if [ "$ACTUAL" != "$INTEGRITY" ]; then
    echo "vendor-redoc: redoc@$VERSION integrity $ACTUAL, expected $INTEGRITY" >&2
    exit 1
fi

tar -xzf "$TARBALL" -C "$WORK" \
    package/LICENSE package/bundles/redoc.standalone.js package/bundles/redoc.standalone.js.LICENSE.txt
mkdir -p "$DEST"
install -m 0644 "$WORK/package/bundles/redoc.standalone.js" "$DEST/redoc.standalone.js"
install -m 0644 "$WORK/package/bundles/redoc.standalone.js.LICENSE.txt" "$DEST/THIRD-PARTY-LICENSES.txt"
install -m 0644 "$WORK/package/LICENSE" "$DEST/LICENSE"
(cd "$DEST" && sha256sum redoc.standalone.js >SHA256SUMS)
echo "vendor-redoc: redoc@$VERSION in ${DEST#"$ROOT"/}" >&2
