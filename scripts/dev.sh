#!/usr/bin/env bash
# One command from a fresh clone to a running dev cluster: Docker engine and
# test image, Node dependencies, a dev agent, and examples/web.json on it.
# Ctrl-C stops the example job and the agent.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-docker.sh
bash scripts/ensure-deps.sh

HTTP=${SHOAL_HTTP:-127.0.0.1:4680}
BIND=${SHOAL_BIND:-127.0.0.1}
DATA=${SHOAL_DATA_DIR:-${TMPDIR:-/tmp}/shoal-dev}
LOG="$DATA.log"
export SHOAL_ADDR="http://$HTTP"
mkdir -p "$DATA"

./bin/shoal agent --dev --data-dir "$DATA" --http "$HTTP" --bind "$BIND" --name dev-1 >"$LOG" 2>&1 &
agent=$!
cleanup() {
  trap - INT TERM EXIT
  echo; echo "==> stopping the example job and the agent"
  ./bin/shoal job stop web --purge >/dev/null 2>&1 || true
  kill "$agent" 2>/dev/null || true
  wait "$agent" 2>/dev/null || true
}
trap cleanup INT TERM EXIT

for _ in $(seq 1 100); do
  curl -fsS "$SHOAL_ADDR/v1/agent/self" >/dev/null 2>&1 && break
  kill -0 "$agent" 2>/dev/null || { echo "agent exited; its log:"; cat "$LOG"; exit 1; }
  sleep 0.1
done
echo "==> dev agent up at $SHOAL_ADDR (log: $LOG, data: $DATA)"

./bin/shoal job run examples/web.json
echo
./bin/shoal job status web
echo
echo "==> reach the example:"
./bin/shoal job status web --json | node_modules/.bin/node -e '
  let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => {
    for (const a of JSON.parse(s).allocations) if (a.desiredStatus === "run")
      for (const p of a.ports) console.log(`    curl http://${p.hostIp}:${p.value}/    # ${a.name}`)
  })'
echo
echo "    SHOAL_ADDR=$SHOAL_ADDR ./bin/shoal job status web"
echo "    SHOAL_ADDR=$SHOAL_ADDR ./bin/shoal alloc logs <alloc-id>"
echo "==> Ctrl-C to stop the job and the agent"
wait "$agent"
