#!/usr/bin/env bash
# End-to-end demo without a Functions host: Azurite (in memory) + bin/handler,
# a replayed AKS upgrade timeline, then the state the handler keeps, the
# notifications it sent to a local receiver (bin/sink) and a dry-run
# remediation plan. Run through `make demo`, which builds bin/ first.
#
# Environment:
#   BIN             bin     where `make build` put handler, replay and sink
#   DEMO_PORT       8089    FUNCTIONS_CUSTOMHANDLER_PORT for the handler
#   DEMO_SINK_PORT  8091    where bin/sink receives the notifications
#   DEMO_KEEP       1       at the end, keep serving the dashboard until Ctrl-C (only when
#                           stdin is a terminal, so CI and scripts never wait); 0: exit
#   AZURITE_DIR, AZURITE_TABLE_HOST, AZURITE_TABLE_PORT as in scripts/azurite-table.sh
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

bin=${BIN:-bin}
port=${DEMO_PORT:-8089}
base="http://127.0.0.1:$port"
handler_log="$bin/demo-handler.log"
sink_port=${DEMO_SINK_PORT:-8091}
sink="http://127.0.0.1:$sink_port"
sink_log="$bin/demo-sink.log"
sink_out="$bin/demo-sink.jsonl"
# UseDevelopmentStorage=true means the well-known local endpoint.
export AZURITE_PERSIST=0

step() { printf '\n==> %s\n' "$*"; }
die() { echo "demo: $*" >&2; exit 1; }

for exe in handler replay sink demo; do
  [ -x "$bin/$exe" ] || die "$bin/$exe is missing (run: make build)"
done
if [ "${AZURITE_TABLE_HOST:-127.0.0.1}:${AZURITE_TABLE_PORT:-10002}" != "127.0.0.1:10002" ]; then
  echo "demo: warning: UseDevelopmentStorage=true points at 127.0.0.1:10002, not" \
    "${AZURITE_TABLE_HOST:-127.0.0.1}:${AZURITE_TABLE_PORT:-10002}" >&2
fi
if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
  die "127.0.0.1:$port is already in use; pick another port with DEMO_PORT=..."
fi
if (exec 3<>"/dev/tcp/127.0.0.1/$sink_port") 2>/dev/null; then
  die "127.0.0.1:$sink_port is already in use; pick another port with DEMO_SINK_PORT=..."
fi

azurite_host=${AZURITE_TABLE_HOST:-127.0.0.1}
azurite_port=${AZURITE_TABLE_PORT:-10002}
azurite_pidfile="${AZURITE_DIR:-.azurite}/azurite-table.pid"
azurite_pid= # set when this run started Azurite
table_prefix= # set when it reuses one: an empty fleet all the same
handler_pid=
sink_pid=

# stop PID: SIGTERM, up to 5 s to finish, then SIGKILL.
stop() {
  local pid=$1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local rc=$?
  # The handler first: it may still be sending to the sink.
  stop "$handler_pid"
  stop "$sink_pid"
  # Only the Azurite this run started. The pid file is per $AZURITE_DIR, not
  # per port: if it names another instance now, leave that one alone.
  if [ -n "$azurite_pid" ]; then
    if [ "$(cat "$azurite_pidfile" 2>/dev/null)" = "$azurite_pid" ]; then
      scripts/azurite-table.sh stop || true
    else
      kill -INT "$azurite_pid" 2>/dev/null || true
    fi
  fi
  if [ "$rc" != 0 ]; then
    for log in "$handler_log" "$sink_log"; do
      [ -s "$log" ] || continue
      echo "demo: failed (exit $rc); last lines of $log:" >&2
      tail -n 20 "$log" >&2 || true
    done
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$bin"
rm -f "$handler_log" "$sink_log" "$sink_out" # nothing of an earlier run; -out appends

step "Azurite"
status_rc=0
scripts/azurite-table.sh status >/dev/null 2>&1 || status_rc=$?
if (exec 3<>"/dev/tcp/$azurite_host/$azurite_port") 2>/dev/null; then
  table_prefix="demo$(date +%s)"
  echo "reusing the Azurite instance already running on $azurite_host:$azurite_port;" \
    "this run starts from an empty fleet in tables named $table_prefix* (left there afterwards)"
elif [ "$status_rc" = 1 ]; then
  # The pid file names a live Azurite that does not listen here: one started
  # with another AZURITE_TABLE_PORT, not the demo's to stop or replace.
  die "$azurite_pidfile names Azurite pid $(cat "$azurite_pidfile" 2>/dev/null), which does not listen on" \
    "$azurite_host:$azurite_port; left alone. Run the demo with another AZURITE_DIR that holds" \
    "the same node_modules, or start Azurite on $azurite_port first."
else
  scripts/azurite-table.sh start
  azurite_pid=$(cat "$azurite_pidfile")
fi

step "notification receiver bin/sink on $sink (log: $sink_log, every item: $sink_out)"
"$bin/sink" -addr "127.0.0.1:$sink_port" -out "$sink_out" >"$sink_log" 2>&1 &
sink_pid=$!
ready=0
for _ in $(seq 1 50); do # 5 s
  kill -0 "$sink_pid" 2>/dev/null || die "sink exited during startup"
  if curl -fs -o /dev/null -m 1 "$sink/healthz"; then
    ready=1
    break
  fi
  sleep 0.1
done
[ "$ready" = 1 ] || die "sink did not answer GET $sink/healthz within 5s"
echo "sink is up (pid $sink_pid)"

step "handler on $base (log: $handler_log)"
# No ARM here: enrichment off (with it on, the handler would try your az login),
# and remediation capped at dry-run: clusters that opt in get a plan, announced
# but never carried out. The policy every finding is judged against:
# scripts/demo-policy.json, which is docs/examples/policy.json with every code's
# grace set to 30s and two routes: the three-week backlog arrives within
# seconds, so what opened and resolved within it is never announced, and the
# demo's one sweep, after waiting out those 30 s, announces what is still open
# instead of after minutes or hours (docs/notifications.md). Teams
# and Slack get one grouped message per cluster per dispatch
# (UPGRADEWATCH_NOTIFY_GROUP_WAIT=0: no 30 s wait for more steps, the demo is
# over by then). Notifications go to the sink as CloudEvents and as Teams and
# Slack messages; the route "checkout-oncall" sends the checkout cluster's Error
# and Critical steps also to a second webhook sink, "oncall" ($sink/oncall),
# and goes on ("continue") to the route to every other sink. Node snapshots are taken on the function key alone
# (UPGRADEWATCH_NODE_AUTH=key, which the handler warns about): without ARM the
# demo's clusters have no OIDC issuer to verify a reporter's token against.
# Never run a deployed app so (docs/security.md).
AzureWebJobsStorage=UseDevelopmentStorage=true UPGRADEWATCH_TABLE_PREFIX="$table_prefix" \
  FUNCTIONS_CUSTOMHANDLER_PORT="$port" UPGRADEWATCH_ENRICH=false UPGRADEWATCH_NODE_AUTH=key \
  UPGRADEWATCH_POLICY=scripts/demo-policy.json UPGRADEWATCH_PUBLIC_URL="$base" UPGRADEWATCH_REMEDIATION=dry-run \
  UPGRADEWATCH_NOTIFY_WEBHOOK_URL="$sink/events" UPGRADEWATCH_NOTIFY_TEAMS_URL="$sink/teams" \
  UPGRADEWATCH_NOTIFY_SLACK_URL="$sink/slack" UPGRADEWATCH_NOTIFY_GROUP_WAIT=0 \
  UPGRADEWATCH_NOTIFY_SINKS=oncall=webhook UPGRADEWATCH_NOTIFY_SINK_ONCALL_URL="$sink/oncall" \
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
"$bin/demo" json "$base/api/clusters"

step "per-cluster state"
"$bin/replay" -handler "$base" -timeline none -show

shop="$base/api/clusters/7d3c1a52-9f0e-4b8a-a1c2-3e5f6a7b8c9d/rg-shop-prod-weu/aks-shop-prod-weu"
step "node inventory: 'kubectl get nodes -o json' of a mixed cluster, then the same cluster a day later"
"$bin/demo" nodes "$shop/nodes" internal/inventory/testdata/nodes-mixed.json internal/inventory/testdata/nodes-mixed-next.json

step "GET $shop/nodes (version spread per pool, image history)"
"$bin/demo" spread "$shop/nodes"

stage="$base/api/clusters/7d3c1a52-9f0e-4b8a-a1c2-3e5f6a7b8c9d/rg-shop-stage-weu/aks-shop-stage-weu"
step "a staging cluster mid-upgrade: one node quarantined (POST $stage/nodes)"
"$bin/demo" post "$stage/nodes" internal/inventory/testdata/nodes-mixed.json

checkout=3f2b8c1e-7d4a-4e29-9b6f-0a1c5d8e2f47/rg-checkout-prod/aks-checkout-neu
step "silence the checkout cluster's UpgradeFailed on pool/system before it opens (POST, GET $base/api/silences)"
"$bin/demo" silence "$base" "$checkout" UpgradeFailed pool/system

step "the checkout cluster's system pool fails its upgrade (NodePoolRollingFailed)"
"$bin/demo" rolling "$base" \
  /subscriptions/3f2b8c1e-7d4a-4e29-9b6f-0a1c5d8e2f47/resourceGroups/rg-checkout-prod/providers/Microsoft.ContainerService/managedClusters/aks-checkout-neu \
  system Started Failed

step "wait out the demo policy's 30 s grace (minutes to hours in docs/examples/policy.json)"
"$bin/demo" wait-grace "$base"

step "Sweep (what the timer trigger does every 5 minutes): announces what outlived its grace, one message per cluster"
"$bin/demo" sweep "$base"

step "notifications received by the local CloudEvents receiver (bin/sink)"
"$bin/demo" received "$sink"

step "the backlog sent nothing for what already resolved (Status API announcement: never)"
"$bin/demo" backlog "$base" "$sink"

step "the silenced UpgradeFailed is open with silencedBy, and the sink got nothing for it"
"$bin/demo" silenced "$base" "$sink" "$checkout" UpgradeFailed pool/system

step "end the silence (DELETE $base/api/silences/{id}): the opening arrives at once, also at the oncall route's sink"
"$bin/demo" unsilence "$base" "$sink" "$checkout" UpgradeFailed pool/system

# The timeline's analytics cluster opts into dry-run remediation (cluster tag).
analytics="$base/api/clusters/b71d04a9-52e3-4c8f-a6d2-9e13f07c4b58/rg-analytics-dev/aks-analytics-eus"
step "dry-run remediation plan (what the Sweep would do; ARM is never called)"
"$bin/demo" plan "$sink" "$analytics"

step "activity log: one cluster write through Event Grid, an alert and the export is one signal"
"$bin/demo" activity "$base" three-paths

step "activity log: AKS reports why the checkout roll failed (export records)"
"$bin/demo" activity "$base" aks-failure

step "who did what: channel changes, who asked for each upgrade, failures (Status API)"
"$bin/demo" activity "$base" show

step "GET $base/api/findings (open findings of the fleet, most severe first)"
"$bin/demo" findings "$base"

step "GET $base/api/compliance (patch compliance; each pool not current with its status and reason)"
"$bin/demo" compliance "$base"

step "bin/sink's tally of the whole run (handler and sink stopped)"
stop "$handler_pid"
stop "$sink_pid"
tail -n 1 "$sink_log" | sed 's/^/  /'
tail -n 1 "$sink_log" | grep -q '; 0 duplicates;' || die "the sink received duplicates; see $sink_out"

# Keep serving the dashboard over the demo's state until Ctrl-C: the handler
# again, on the same tables, without remediation. The policy's routes name the
# demo's sinks, and a route to a sink not configured stops the start, so they
# are configured as before; the sink is stopped (its tally is final) and
# nothing is left to send. Only at a terminal: CI and scripts never wait.
if [ "${DEMO_KEEP:-1}" != 0 ] && [ -t 0 ]; then
  step "the dashboard"
  AzureWebJobsStorage=UseDevelopmentStorage=true UPGRADEWATCH_TABLE_PREFIX="$table_prefix" \
    FUNCTIONS_CUSTOMHANDLER_PORT="$port" UPGRADEWATCH_ENRICH=false UPGRADEWATCH_NODE_AUTH=key \
    UPGRADEWATCH_POLICY=scripts/demo-policy.json UPGRADEWATCH_PUBLIC_URL="$base" \
    UPGRADEWATCH_NOTIFY_WEBHOOK_URL="$sink/events" UPGRADEWATCH_NOTIFY_TEAMS_URL="$sink/teams" \
    UPGRADEWATCH_NOTIFY_SLACK_URL="$sink/slack" UPGRADEWATCH_NOTIFY_SINKS=oncall=webhook \
    UPGRADEWATCH_NOTIFY_SINK_ONCALL_URL="$sink/oncall" \
    "$bin/handler" >>"$handler_log" 2>&1 &
  handler_pid=$!
  for _ in $(seq 1 100); do # 10 s
    kill -0 "$handler_pid" 2>/dev/null || die "handler exited during startup"
    curl -fs -o /dev/null -m 1 "$base/api/dashboard" && break
    sleep 0.1
  done
  curl -fs -o /dev/null -m 1 "$base/api/dashboard" || die "the dashboard did not answer within 10s"
  echo "Dashboard: $base/api/dashboard"
  echo "serving it until Ctrl-C (DEMO_KEEP=0 exits instead)"
  trap 'exit 0' INT TERM # Ctrl-C is how this run ends: a success
  wait "$handler_pid" || die "the handler stopped (exit $?); see $handler_log"
elif [ "${DEMO_KEEP:-1}" != 0 ]; then
  echo
  echo "demo: not serving the dashboard on: stdin is not a terminal (run make demo at a terminal to keep it)"
fi
