#!/usr/bin/env bash
# Regenerates the dashboard screenshots in docs/dashboard/ from the browser tests (real Chromium
# against custodian start, the OIDC provider, PostgreSQL, sshd and an MCP server): never drawn by hand.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source scripts/lib/node-env.sh
export NX_DAEMON=false NX_NO_CLOUD=true
CUSTODIAN_SCREENSHOTS="$ROOT/docs/dashboard" npx vitest run --no-file-parallelism services/cli/src/dashboard.browser.int.test.ts services/cli/src/dashboard-replay.browser.int.test.ts
ls -1 docs/dashboard/*.png
