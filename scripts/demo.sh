#!/usr/bin/env bash
# End-to-end demo without a Functions host: Azurite (in memory) + bin/handler,
# a replayed AKS upgrade timeline, then the state the handler keeps.
# Run through `make demo`, which builds bin/ first.
#
# Environment:
#   BIN        bin     where `make build` put handler and replay
#   DEMO_PORT  8089    FUNCTIONS_CUSTOMHANDLER_PORT for the handler
#   AZURITE_DIR, AZURITE_TABLE_HOST, AZURITE_TABLE_PORT as in scripts/azurite-table.sh
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

bin=${BIN:-bin}
port=${DEMO_PORT:-8089}
base="http://127.0.0.1:$port"
handler_log="$bin/demo-handler.log"
# UseDevelopmentStorage=true means the well-known local endpoint.
export AZURITE_PERSIST=0

step() { printf '\n==> %s\n' "$*"; }
die() { echo "demo: $*" >&2; exit 1; }

for exe in handler replay; do
  [ -x "$bin/$exe" ] || die "$bin/$exe is missing (run: make build)"
done
if [ "${AZURITE_TABLE_HOST:-127.0.0.1}:${AZURITE_TABLE_PORT:-10002}" != "127.0.0.1:10002" ]; then
  echo "demo: warning: UseDevelopmentStorage=true points at 127.0.0.1:10002, not" \
    "${AZURITE_TABLE_HOST:-127.0.0.1}:${AZURITE_TABLE_PORT:-10002}" >&2
fi
if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
  die "127.0.0.1:$port is already in use; pick another port with DEMO_PORT=..."
fi

azurite_started=0
handler_pid=

cleanup() {
  local rc=$?
  if [ -n "$handler_pid" ] && kill -0 "$handler_pid" 2>/dev/null; then
    kill -TERM "$handler_pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "$handler_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$handler_pid" 2>/dev/null || true
    wait "$handler_pid" 2>/dev/null || true
  fi
  if [ "$azurite_started" = 1 ]; then
    scripts/azurite-table.sh stop || true
  fi
  if [ "$rc" != 0 ] && [ -s "$handler_log" ]; then
    echo "demo: failed (exit $rc); last lines of $handler_log:" >&2
    tail -n 20 "$handler_log" >&2 || true
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step "Azurite"
if scripts/azurite-table.sh status >/dev/null 2>&1; then
  echo "reusing the Azurite instance already running (its data is kept)"
else
  azurite_started=1
  scripts/azurite-table.sh start
fi

step "handler on $base (log: $handler_log)"
mkdir -p "$bin"
# No ARM here: enrichment off (with it on, the handler would try your az login).
# The policy every finding is judged against: docs/examples/policy.json.
AzureWebJobsStorage=UseDevelopmentStorage=true FUNCTIONS_CUSTOMHANDLER_PORT="$port" UPGRADEWATCH_ENRICH=false \
  UPGRADEWATCH_POLICY=docs/examples/policy.json \
  "$bin/handler" >"$handler_log" 2>&1 &
handler_pid=$!

ready=0
for _ in $(seq 1 100); do # 10 s
  kill -0 "$handler_pid" 2>/dev/null || die "handler exited during startup"
  code=$(curl -s -o /dev/null -m 1 -w '%{http_code}' "$base/" || true)
  if [ -n "$code" ] && [ "$code" != 000 ]; then
    ready=1
    break
  fi
  sleep 0.1
done
[ "$ready" = 1 ] || die "handler did not answer GET $base/ within 10s"
echo "handler is up (pid $handler_pid)"

step "replay the demo timeline"
"$bin/replay" -handler "$base" -timeline demo

step "GET $base/api/clusters"
body=$(curl -sS -m 10 "$base/api/clusters")
if command -v python3 >/dev/null 2>&1 && printf '%s' "$body" | python3 -m json.tool 2>/dev/null; then
  :
else
  printf '%s\n' "$body"
fi

step "per-cluster state"
"$bin/replay" -handler "$base" -show

shop="$base/api/clusters/7d3c1a52-9f0e-4b8a-a1c2-3e5f6a7b8c9d/rg-shop-prod-weu/aks-shop-prod-weu"
step "node inventory: 'kubectl get nodes -o json' of a mixed cluster, then the same cluster a day later"
for day in nodes-mixed.json nodes-mixed-next.json; do
  echo "POST $shop/nodes < internal/inventory/testdata/$day"
  curl -sS -m 10 -H 'content-type: application/json' --data-binary "@internal/inventory/testdata/$day" "$shop/nodes" |
    python3 -c 'import json, sys; r = json.load(sys.stdin); print("  {result}: {nodes} nodes ({skipped} virtual skipped), {changedNodes} node rows written, {versionChanges} image changes, {transactions} transaction(s)".format(**r))'
done

step "GET $shop/nodes (version spread per pool, image history)"
curl -sS -m 10 "$shop/nodes" | python3 -c '
import json, sys
r = json.load(sys.stdin)
for p in r["pools"]:
    spread = ", ".join("%s x%d" % (v["version"], v["nodes"]) for v in p["versions"])
    print("  pool %-8s %d nodes, %d ready, %d quarantined: %s" % (p["pool"], p["nodes"], p["ready"], p["quarantined"], spread))
for h in r["history"]:
    print("  %s  %s: %s -> %s" % (h["observedAt"], h["node"], h["from"], h["to"]))
'

stage="$base/api/clusters/7d3c1a52-9f0e-4b8a-a1c2-3e5f6a7b8c9d/rg-shop-stage-weu/aks-shop-stage-weu"
step "a staging cluster mid-upgrade: one node quarantined (POST $stage/nodes)"
curl -sS -m 10 -o /dev/null -w '  HTTP %{http_code}\n' -H 'content-type: application/json' \
  --data-binary @internal/inventory/testdata/nodes-mixed.json "$stage/nodes"

step "the checkout cluster's system pool fails its upgrade (NodePoolRollingFailed)"
topic=/subscriptions/3f2b8c1e-7d4a-4e29-9b6f-0a1c5d8e2f47/resourceGroups/rg-checkout-prod/providers/Microsoft.ContainerService/managedClusters/aks-checkout-neu
for kind in Started Failed; do
  curl -sS -m 10 -H 'content-type: application/json' -X POST "$base/AksEvents" --data "{\"Data\":{\"event\":{
    \"id\":\"$(python3 -c 'import uuid; print(uuid.uuid4())')\",\"topic\":\"$topic\",\"subject\":\"aks-checkout-neu\",
    \"eventType\":\"Microsoft.ContainerService.NodePoolRolling$kind\",\"eventTime\":\"$(date -u +%Y-%m-%dT%H:%M:%SZ)\",
    \"data\":{\"nodePoolName\":\"system\"},\"dataVersion\":\"1\",\"metadataVersion\":\"1\"}},\"Metadata\":{}}" |
    python3 -c 'import json, sys; print("  " + json.dumps(json.load(sys.stdin)["ReturnValue"]))'
done

step "Sweep (what the timer trigger does every 5 minutes)"
now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
curl -sS -m 30 -H 'content-type: application/json' -X POST "$base/Sweep" \
  --data "{\"Data\":{\"timer\":{\"IsPastDue\":false}},\"Metadata\":{\"sys\":{\"MethodName\":\"Sweep\",\"UtcNow\":\"$now\"}}}" |
  python3 -c 'import json, sys; print("  " + json.dumps(json.load(sys.stdin)["ReturnValue"]))'

step "activity log: one cluster write through Event Grid, an alert and the export is one signal"
python3 scripts/demo/activity.py "$base" three-paths

step "activity log: AKS reports why the checkout roll failed (export records)"
python3 scripts/demo/activity.py "$base" aks-failure

step "who did what: channel changes, who asked for each upgrade, failures (Status API)"
python3 scripts/demo/activity.py "$base" show

step "GET $base/api/findings (open findings of the fleet, most severe first)"
curl -sS -m 10 "$base/api/findings" | python3 -c '
import json, sys
r = json.load(sys.stdin)
print("  %d open: %s" % (r["count"], ", ".join("%s %d" % kv for kv in sorted(r["bySeverity"].items()))))
for f in r["findings"]:
    cluster = f["cluster"].rsplit("/", 1)[-1]
    print("  %-8s %-26s %-19s %-22s %s" % (f["severity"], f["code"], cluster, f["target"], f["summary"][:90]))
'
