#!/usr/bin/env bash
# Provides sigstore cosign at .tools/go-bin/cosign, built from the Go module proxy. The evidence
# interop tests use it to verify evidence-pack attestations (DSSE / in-toto) with a tool no one at
# Custodian wrote; they skip, saying why, when it is missing. The build (~8 minutes on two cores,
# ~140 MB) is cached per machine under ~/.cache/custodian/tools, so fresh clones reuse it.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VERSION="v2.6.5"
BIN="$ROOT/.tools/go-bin"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/custodian/tools/cosign-$VERSION"
if [ ! -x "$CACHE/cosign" ] || ! "$CACHE/cosign" version 2>/dev/null | grep -q "GitVersion:.*${VERSION#v}"; then
  GO="${GO:-$(command -v go || echo /usr/local/go/bin/go)}"
  echo "==> building cosign $VERSION from the Go module proxy (cached in $CACHE)" >&2
  started=$(date +%s)
  mkdir -p "$CACHE"
  GOBIN="$CACHE" GOFLAGS=-buildvcs=false "$GO" install "github.com/sigstore/cosign/v2/cmd/cosign@$VERSION"
  echo "==> cosign built in $(( $(date +%s) - started ))s" >&2
fi
mkdir -p "$BIN"
ln -sf "$CACHE/cosign" "$BIN/cosign"
