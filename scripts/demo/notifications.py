#!/usr/bin/env python3
"""Shows what the local receiver (bin/sink) got from the handler, for `make demo`:

  received  waits until the sink stops receiving, then counts what it got by
            kind and CloudEvent type, prints a sample, and fails when no
            CloudEvent arrived or any arrived twice
  plan      the dry-run remediations of one cluster (Status API) and the
            io.upgradewatch.remediation.planned CloudEvent the sink got for
            each; fails when there is none

Usage: notifications.py SINK_URL received
       notifications.py SINK_URL plan STATUS_URL

Exit status 1 when the demo's expectation fails, with the reason on stderr.
"""
import collections
import json
import sys
import time
import urllib.request

PLANNED = "io.upgradewatch.remediation.planned"
PREFIX = "io.upgradewatch."
# The handler dispatches in the background: the sink has it all once its count
# stays put this long, or the deadline passes.
SETTLE, DEADLINE, POLL = 1.0, 10.0, 0.2
SAMPLE = 10


def fail(msg):
    print("demo: " + msg, file=sys.stderr)
    sys.exit(1)


def get(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.load(r)


def settled(sink):
    """GET /events until the count stops growing; returns the items."""
    deadline = time.monotonic() + DEADLINE
    items = get(sink + "/events")
    stable_since = time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(POLL)
        now = get(sink + "/events")
        if len(now) != len(items):
            items, stable_since = now, time.monotonic()
        elif items and time.monotonic() - stable_since >= SETTLE:
            break
    return items


def name(arm_id):
    return arm_id.rsplit("/", 1)[-1] if arm_id else "-"


def counts(counter):
    return ", ".join("%s %d" % kv for kv in sorted(counter.items())) or "none"


def sample(events):
    """Up to SAMPLE events, each type in turn (the rarest first), one per
    (type, code, cluster, target), in the order received."""
    by_type, seen = collections.defaultdict(list), set()
    for n, i in enumerate(events):
        ev = i["event"]
        data = ev.get("data") or {}
        key = (ev["type"], data.get("code"), data.get("cluster"), data.get("target"))
        if key not in seen:
            seen.add(key)
            by_type[ev["type"]].append((n, ev))
    queues = sorted(by_type.values(), key=len)
    keep = []
    while len(keep) < SAMPLE and any(queues):
        for q in queues:
            if q and len(keep) < SAMPLE:
                keep.append(q.pop(0))
    return [ev for _, ev in sorted(keep, key=lambda x: x[0])]


def received(sink):
    items = settled(sink)
    events = [i for i in items if i.get("kind") == "cloudevent"]
    dups = sum(1 for i in items if i.get("duplicate"))
    print("  %d received: %s" % (len(items), counts(collections.Counter(i.get("kind") for i in items))))
    print("  CloudEvents by type: %s" % counts(collections.Counter(i["event"]["type"] for i in events)))
    keep = sample(events)
    if keep:
        print("  a sample of %d (type, code, cluster, target), in the order received:" % len(keep))
    for ev in keep:
        data = ev.get("data") or {}
        print("    %-21s %-24s %-18s %s" % (ev["type"].removeprefix(PREFIX), data.get("code", "-"),
                                             name(data.get("cluster")), data.get("target", "-")))
    print("  duplicates: %d" % dups)
    if dups:
        fail("the sink received %d duplicate CloudEvent(s); see %s/events" % (dups, sink))
    if not events:
        fail("no CloudEvent reached the sink; is UPGRADEWATCH_NOTIFY_WEBHOOK_URL set?")


def plan(sink, status_url):
    detail = get(status_url)
    cluster = detail["cluster"]
    rems = detail.get("remediations") or []
    tag = (cluster.get("tags") or {}).get("upgradewatch.remediate", "(none)")
    print("  %s opted in with the tag upgradewatch.remediate=%s; its remediations (Status API):" % (cluster["name"], tag))
    for r in rems:
        print("    %s  %s  %s on %s  %s -> %s  planned %s" % (
            r["action"], r["status"], r["code"], r["target"], r.get("from") or "(unknown)", r.get("to") or "-",
            r["plannedAt"][:19] + "Z"))
        print("      " + r.get("detail", ""))
    if not any(r.get("status") == "DryRun" for r in rems):
        fail("no dry-run remediation recorded for %s; see %s" % (cluster["name"], status_url))

    # The planned notification goes out with the sweep's dispatch; wait a
    # little for the background one if it is not there yet.
    deadline = time.monotonic() + DEADLINE
    while True:
        planned = [i["event"] for i in get(sink + "/events")
                   if i.get("kind") == "cloudevent" and i["event"]["type"] == PLANNED
                   and (i["event"].get("data") or {}).get("cluster", "").lower() == cluster["resourceId"].lower()
                   and ((i["event"]["data"].get("remediation") or {}).get("dryRun") is True)]
        if planned or time.monotonic() >= deadline:
            break
        time.sleep(POLL)
    if not planned:
        fail("the sink got no %s CloudEvent with dryRun true for %s" % (PLANNED, cluster["name"]))
    print("  %s received by bin/sink:" % PLANNED)
    for line in json.dumps(planned[-1], indent=2, ensure_ascii=False).splitlines():
        print("    " + line)


def main(argv):
    if len(argv) == 3 and argv[2] == "received":
        received(argv[1].rstrip("/"))
    elif len(argv) == 4 and argv[2] == "plan":
        plan(argv[1].rstrip("/"), argv[3])
    else:
        print(__doc__.strip(), file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main(sys.argv)
