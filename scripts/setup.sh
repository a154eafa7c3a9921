#!/usr/bin/env bash
# Provisions what a fresh machine lacks, idempotently:
#   always:      Node 24 (.tools/node), npm dependencies, the TypeScript build
#   --services:  what the test suite and benchmarks run for real: PostgreSQL, pgbouncer,
#                OpenSSH, Chromium (Debian packages), Apache Kafka (Maven Central artifacts in ~/.m2), and
#                the independent verifiers: pydantic-ocsf + compliance-trestle (PyPI, .tools/python),
#                cosign (built from the Go module proxy, cached in ~/.cache/custodian/tools)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
source scripts/lib/node-env.sh

WITH_SERVICES=0
for arg in "$@"; do
  case "$arg" in
    --services) WITH_SERVICES=1 ;;
    *) echo "setup.sh: unknown argument $arg" >&2; exit 2 ;;
  esac
done

step() { echo "==> $*" >&2; }

if [ "$WITH_SERVICES" = 1 ]; then
  # chromium: the dashboard's browser tests drive it through playwright-core (no browser download).
  DEBIAN_PACKAGES=(postgresql pgbouncer openssh-server openssh-client sshpass asciinema chromium)
  missing=()
  for p in "${DEBIAN_PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ "${#missing[@]}" -gt 0 ]; then
    step "installing Debian packages: ${missing[*]}"
    if [ "$(id -u)" != 0 ]; then echo "setup.sh: need root to apt-get install ${missing[*]}" >&2; exit 1; fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    # The Debian postinstall may start a cluster and sshd as system services; tests run their own.
    (service postgresql stop; service ssh stop) >/dev/null 2>&1 || true
  fi
fi

lock_stamp="node_modules/.package-lock.json"
if [ ! -f "$lock_stamp" ] || [ package-lock.json -nt "$lock_stamp" ]; then
  step "installing npm dependencies from package-lock.json"
  # Not `npm ci`: npm 11 omits other platforms' optional packages (@swc/core-darwin-*, …) from
  # the lock it writes on this machine, and `npm ci` then refuses that very lock as out of sync.
  # `npm install` installs the locked versions all the same.
  npm_config_nodedir="${CUSTODIAN_NODEDIR:-}" npm install --no-audit --no-fund --loglevel=error
fi

# ssh2's optional native crypto binding (AES-GCM without a cipher object per packet: about 15% of
# the SSH gateway's thread in a bulk transfer). package.json's allowScripts lets npm run ssh2's
# install script (node-gyp, against Node 24's headers through npm_config_nodedir) when it installs
# ssh2; a clone whose node_modules predates that, or was built against other headers, is rebuilt
# here. Without a C++ compiler ssh2 falls back to its pure-JS ciphers (slower, still correct).
ssh2_native() { node -e "process.exit(require('ssh2/lib/protocol/crypto.js').bindingAvailable ? 0 : 1)" 2>/dev/null; }
if ! ssh2_native; then
  step "building ssh2's native crypto binding (node-gyp)"
  npm_config_nodedir="${CUSTODIAN_NODEDIR:-}" npm rebuild ssh2 --loglevel=error >&2 || true
  ssh2_native || echo "setup.sh: warning: ssh2's native crypto binding did not build (is a C++ compiler installed?); the SSH gateway runs on ssh2's pure-JS ciphers" >&2
fi

if [ "$WITH_SERVICES" = 1 ] && [ -x libs/platform/test-harness/kafka/resolve.sh ]; then
  step "resolving Apache Kafka from Maven Central (cached in ~/.m2)"
  libs/platform/test-harness/kafka/resolve.sh
fi

if [ "$WITH_SERVICES" = 1 ]; then
  step "Python tools: OCSF models (SIEM tests), compliance-trestle (OSCAL validation), MCP Python SDK (MCP gateway tests)"
  bash scripts/setup-python.sh
  step "cosign (verifies evidence-pack attestations in tests)"
  bash tools/cosign/install.sh
fi

step "building (tsc -b, then the dashboard with Vite)"
npm run build --silent
