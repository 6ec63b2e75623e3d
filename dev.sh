#!/usr/bin/env bash
# Set up the project's environment (.venv) and run it:
#   ./dev.sh demo [ARGS]   open the app on a demo workspace
#   ./dev.sh test [ARGS]   run the whole test suite (ARGS go to pytest)
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
  # Reinstall only when the dependencies changed.
  local stamp=".venv/.installed-$extra-$(sha256sum pyproject.toml | cut -c1-16)"
  if [ ! -f "$stamp" ]; then
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e ".[$extra]"
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

cmd=${1:-}
shift || true
case "$cmd" in
  demo) setup dev; exec .venv/bin/picsellia-tui demo "$@" ;;
  test) setup dev; system_tools; exec .venv/bin/python -m pytest "$@" ;;
  run) setup dev; exec .venv/bin/picsellia-tui "$@" ;;
  bench) setup dev; exec .venv/bin/python -m bench.run "$@" ;;
  reliability) setup dev; system_tools; exec .venv/bin/python -m pytest tests/reliability "$@" ;;
  *) sed -n '2,7p' "$0" >&2; exit 2 ;;
esac
