#!/usr/bin/env bash
# README command 2: install what is missing (Node 24, Debian packages, Maven artifacts,
# npm dependencies), then lint, typecheck, check generated files, and run every test
# against real services. Ends with the line `N passed, N failed, N skipped`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh --services
source scripts/lib/node-env.sh
export NX_DAEMON=false NX_NO_CLOUD=true

echo "==> lint" >&2
bash scripts/lint.sh
echo "==> typecheck" >&2
npx tsc -p tsconfig.json --noEmit
npx tsc -p services/api/web/tsconfig.json
echo "==> generated contracts up to date" >&2
node scripts/generate-contracts.ts --check

echo "==> tests" >&2
report="$(mktemp -t custodian-vitest-XXXXXX.json)"
set +e
npx vitest run --reporter=default --reporter=json --outputFile.json="$report" "$@"
status=$?
set -e
node scripts/test-summary.ts "$report"
rm -f "$report"
exit "$status"
