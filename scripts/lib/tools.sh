# Shared helpers for the test scripts: project-local tool folders under .tools/, created only
# when missing or when their requirements change. Source this file; it defines functions only.

NIMBUS_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TOOLS="$NIMBUS_ROOT/.tools"

# The real path of a Python interpreter (not the pyenv shim, which costs ~70 ms a spawn):
# python3.12 when pyenv or PATH has it, else python3.
real_python() {
  local candidate
  for candidate in "$(pyenv prefix 3.12 2>/dev/null)/bin/python3.12" "$(command -v python3.12 2>/dev/null)" "$(command -v python3)"; do
    if [ -x "$candidate" ] && "$candidate" -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null; then
      "$candidate" -c 'import sys; print(sys.executable)'
      return 0
    fi
  done
  echo "no Python 3.11+ found" >&2
  return 1
}

# .tools/venv with tests/requirements.txt installed; prints the venv's python.
ensure_venv() {
  local venv="$TOOLS/venv" req="$NIMBUS_ROOT/tests/requirements.txt" stamp
  stamp="$(sha256sum "$req" | cut -c1-16)"
  if [ ! -x "$venv/bin/python" ] || [ "$(cat "$venv/.stamp" 2>/dev/null)" != "$stamp" ]; then
    echo "installing Python test tools into .tools/venv" >&2
    rm -rf "$venv"
    "$(real_python)" -m venv "$venv" >&2
    "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$req" >&2
    echo "$stamp" > "$venv/.stamp"
  fi
  echo "$venv/bin/python"
}

# .tools/node/node_modules with tests/package.json installed; prints the node_modules path.
ensure_node_modules() {
  local dir="$TOOLS/node" pkg="$NIMBUS_ROOT/tests/package.json" stamp
  stamp="$(sha256sum "$pkg" | cut -c1-16)"
  if [ ! -d "$dir/node_modules" ] || [ "$(cat "$dir/.stamp" 2>/dev/null)" != "$stamp" ]; then
    echo "installing Node test tools into .tools/node" >&2
    rm -rf "$dir" && mkdir -p "$dir"
    cp "$pkg" "$dir/package.json"
    (cd "$dir" && npm install --no-audit --no-fund --loglevel=error >&2)
    echo "$stamp" > "$dir/.stamp"
  fi
  echo "$dir/node_modules"
}

# Debian's chromium for the console's browser test (crates/nimbus/tests/console.rs); installed
# with apt-get when missing (as root, or through passwordless sudo); prints its path. Fails with
# the install command when it cannot install it.
ensure_chromium() {
  local found
  found="$(command -v chromium 2>/dev/null || true)"
  if [ -z "$found" ]; then
    echo "installing chromium (Debian package) for the console's browser test" >&2
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo -n"; fi
    if ! { $sudo apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >&2; }; then
      echo "chromium is missing and could not be installed; run: sudo apt-get install -y chromium" >&2
      return 1
    fi
    found="$(command -v chromium)"
  fi
  echo "$found"
}
