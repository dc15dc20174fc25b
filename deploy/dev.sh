#!/usr/bin/env bash
# The board with demo data on this machine: makes .venv, installs the project, installs
# PostgreSQL and Redis with apt-get when neither answers nor is installed, then runs
# `forum dev` (which starts them into .forum-data/ if they are not running, migrates,
# loads the demo data once, and runs the API and a worker until Ctrl-C).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [[ ! -x .venv/bin/python ]]; then
    python3 -m venv .venv
fi
if [[ ! -e .venv/.dev-installed || pyproject.toml -nt .venv/.dev-installed ]]; then
    .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev]'
    touch .venv/.dev-installed
fi

answers() { timeout 2 bash -c ">/dev/tcp/127.0.0.1/$1" >/dev/null 2>&1; }
need=()
answers 5432 || command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 \
    || need+=(postgresql)
answers 6379 || command -v redis-server >/dev/null || need+=(redis-server)
if ((${#need[@]})); then
    echo "installing ${need[*]} (apt-get)" >&2
    sudo_=""; [[ ${EUID} -ne 0 ]] && sudo_="sudo"
    ${sudo_} apt-get update -qq && ${sudo_} env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq "${need[@]}"
fi

exec .venv/bin/forum dev "$@"
