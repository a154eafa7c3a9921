#!/usr/bin/env bash
# Provisions .tools/python: a Python virtualenv with the independent OCSF implementation the SIEM
# tests validate against (pydantic-ocsf: Pydantic models generated from the OCSF schemas 1.0–1.7,
# from PyPI), the OSCAL validator the evidence tests use (compliance-trestle: NIST OSCAL models) and
# the official MCP Python SDK (mcp 2.x: a 2026-07-28 stateless-era client and server for the MCP gateway tests).
# Idempotent: does nothing when the pinned versions are installed already.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.tools/python"
REQUIREMENTS=(pydantic-ocsf==3.0.0 compliance-trestle==5.2.0 mcp==2.3.0)
STAMP="$VENV/.custodian-requirements"

if [ -x "$VENV/bin/python" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "${REQUIREMENTS[*]}" ]; then
  exit 0
fi

PYTHON="${CUSTODIAN_PYTHON:-python3}"
if ! command -v "$PYTHON" >/dev/null 2>&1; then
  echo "setup-python.sh: $PYTHON not found (Debian: apt-get install python3 python3-venv)" >&2
  exit 1
fi
if ! "$PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "==> installing python3-venv" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
  else
    echo "setup-python.sh: $PYTHON has no venv/ensurepip module (Debian: apt-get install python3-venv)" >&2
    exit 1
  fi
fi

echo "==> creating $VENV with ${REQUIREMENTS[*]}" >&2
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-input "${REQUIREMENTS[@]}"
printf '%s' "${REQUIREMENTS[*]}" > "$STAMP"
