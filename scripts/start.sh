#!/usr/bin/env bash
# README command 1: install what is missing, build, and start Custodian embedded
# (one process: gateway, ingest, projector, api; SQLite event store in .custodian/).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh
source scripts/lib/node-env.sh
exec npx custodian start "$@"
