#!/usr/bin/env bash
# Installs the Node dependencies (which bring Node >= 22 as the npm package
# "node") when they are missing or older than package-lock.json.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x node_modules/.bin/node ] || [ ! -x node_modules/.bin/ava ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  # Not `npm ci`: see .ci/run.
  echo "[ensure-deps] npm install"
  npm install --no-fund --no-audit
fi
