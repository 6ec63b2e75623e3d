#!/usr/bin/env bash
# Set up the project's environment (.venv) and run it:
#   ./dev.sh demo [ARGS]   open the app on a demo workspace
#   ./dev.sh test [ARGS]   run the whole test suite (ARGS go to pytest)
#   ./dev.sh lint          the static gates CI runs first: ruff, format, mypy --strict,
#                          import contracts, dead code (vulture)
#   ./dev.sh lock          re-resolve the dependencies and rewrite constraints.txt
#   ./dev.sh run ARGS      run picsellia-tui ARGS
#   ./dev.sh bench [ARGS]  benchmarks against Docker itself, one table (--quick, target names)
#   ./dev.sh reliability   crash, concurrency, hostile-input and security suite (prints a table)
# Works on a fresh Linux machine with Python 3.11+; nothing else to install by hand.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")"

pick_python() {
  for py in python3.13 python3.12 python3.11 python3; do
    if command -v "$py" >/dev/null 2>&1 &&
      "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      echo "$py"; return
    fi
  done
  echo "dev.sh: Python 3.11 or newer is needed (python3 --version says $(python3 --version 2>&1))" >&2
  exit 1
}

setup() {
  local extra=$1
  if [ ! -x .venv/bin/python ]; then
    "$(pick_python)" -m venv .venv
  fi
  # Reinstall only when the dependencies or their pinned versions changed.
  local stamp=".venv/.installed-$extra-$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)"
  if [ ! -f "$stamp" ]; then
    .venv/bin/python -m pip install -q --upgrade pip
    # constraints.txt pins every dependency to the versions the suite passed with.
    .venv/bin/python -m pip install -q -c constraints.txt -e ".[$extra]"
    rm -f .venv/.installed-"$extra"-*
    touch "$stamp"
  fi
}

system_tools() {
  # End-to-end tests drive the real app in tmux and over SSH.
  local missing=()
  command -v tmux >/dev/null 2>&1 || missing+=(tmux)
  [ -x /usr/sbin/sshd ] || missing+=(openssh-server)
  command -v ssh >/dev/null 2>&1 || missing+=(openssh-client)
  ((${#missing[@]})) || return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "dev.sh: installing ${missing[*]}" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "dev.sh: ${missing[*]} missing: install them (the tmux/SSH tests need them)" >&2
  fi
}

lint() {
  # Every gate runs (one CI log shows every failure); the exit says if any failed.
  local failed=()
  gate() {
    local name=$1
    shift
    echo "== $name" >&2
    "$@" || failed+=("$name")
  }
  gate "ruff check" .venv/bin/ruff check .
  gate "ruff format --check" .venv/bin/ruff format --check .
  gate "mypy --strict" .venv/bin/mypy
  gate "import contracts" .venv/bin/lint-imports
  gate "dead code" .venv/bin/vulture
  if ((${#failed[@]})); then
    echo "dev.sh lint: failed: ${failed[*]}" >&2
    return 1
  fi
  echo "dev.sh lint: all gates passed" >&2
}

lock() {
  # Resolve pyproject.toml's ranges afresh in a throwaway venv and pin the result.
  lock_tmp=$(mktemp -d)
  trap 'rm -rf "$lock_tmp"' EXIT
  local venv=$lock_tmp/venv
  "$(pick_python)" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --upgrade pip
  "$venv/bin/python" -m pip install -q -e ".[dev]"
  {
    echo "# Every dependency pinned (dev.sh installs with -c constraints.txt)."
    echo "# Refresh: ./dev.sh lock (re-resolves pyproject.toml's ranges), then ./dev.sh lint && ./dev.sh test."
    "$venv/bin/python" -m pip freeze --exclude-editable
  } >constraints.txt
  echo "dev.sh: constraints.txt rewritten ($(grep -vc '^#' constraints.txt) packages)" >&2
}

cmd=${1:-}
shift || true
case "$cmd" in
  demo) setup dev; exec .venv/bin/picsellia-tui demo "$@" ;;
  test) setup dev; system_tools; exec .venv/bin/python -m pytest "$@" ;;
  run) setup dev; exec .venv/bin/picsellia-tui "$@" ;;
  lint) setup dev; lint ;;
  lock) lock ;;
  bench) setup dev; exec .venv/bin/python -m bench.run "$@" ;;
  reliability) setup dev; system_tools; exec .venv/bin/python -m pytest tests/reliability "$@" ;;
  *) sed -n '2,10p' "$0" >&2; exit 2 ;;
esac
