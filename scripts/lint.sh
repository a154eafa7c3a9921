#!/usr/bin/env bash
# ESLint with Nx module boundaries. @nx/enforce-module-boundaries reads Nx's cached project
# graph and silently skips itself when there is none (a fresh clone), so compute it first.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib/node-env.sh
export NX_DAEMON=false NX_NO_CLOUD=true
npx nx show projects >/dev/null
exec npx eslint --max-warnings=0 "${@:-.}"
