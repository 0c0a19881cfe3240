#!/usr/bin/env python3
"""Delivers activity-log entries to a running handler the way the Functions
host would, for `make demo`:

  three-paths   the same cluster write through Event Grid (POST /ActivityLog),
                an activity-log alert (POST /api/activitylog/alert) and the
                diagnostic-settings export (POST /ActivityLogStream)
  aks-failure   AKS's own report of the checkout system pool's failed upgrade
                (export records: BeginRequest, then the failure with its message)
  show          who did what, from the Status API

Usage: activity.py BASE_URL three-paths|aks-failure|show
"""
import json
import sys
import urllib.request

FIXTURES = "handlers/testdata/activity/"
# The fixtures are about aks-prod-weu; the demo's platform cluster stands in.
RENAME = [
    ("8f1c2b3a-4d5e-4f60-9a7b-1c2d3e4f5a6b", "b71d04a9-52e3-4c8f-a6d2-9e13f07c4b58"),
    ("rg-platform-weu", "rg-platform-shared"),
    ("aks-prod-weu", "aks-platform-wus2"),
]
CHECKOUT = "/subscriptions/3f2b8c1e-7d4a-4e29-9b6f-0a1c5d8e2f47/resourceGroups/rg-checkout-prod/providers/Microsoft.ContainerService/managedClusters/aks-checkout-neu"
CLUSTERS = [
    ("aks-platform-wus2", "b71d04a9-52e3-4c8f-a6d2-9e13f07c4b58/rg-platform-shared/aks-platform-wus2"),
    ("aks-analytics-eus", "b71d04a9-52e3-4c8f-a6d2-9e13f07c4b58/rg-analytics-dev/aks-analytics-eus"),
    ("aks-checkout-neu", "3f2b8c1e-7d4a-4e29-9b6f-0a1c5d8e2f47/rg-checkout-prod/aks-checkout-neu"),
]


def fixture(name):
    with open(FIXTURES + name) as f:
        text = f.read()
    for old, new in RENAME:
        text = text.replace(old, new).replace(old.upper(), new.upper())
    return text


def post(url, body):
    req = urllib.request.Request(url, data=body.encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


def envelope(binding, value, function):
    return json.dumps({"Data": {binding: value},
                       "Metadata": {"sys": {"MethodName": function, "UtcNow": "2026-11-24T09:00:00Z",
                                            "RandGuid": "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a"}}})


def stream(base, messages):
    # eventHubTrigger, cardinality many, dataType string: a JSON string
    # holding an array of the message bodies as strings.
    value = json.dumps([json.dumps(json.loads(m), separators=(",", ":")) for m in messages])
    return post(base + "/ActivityLogStream", envelope("events", value, "ActivityLogStream"))


def three_paths(base):
    code, r = post(base + "/ActivityLog",
                   envelope("event", json.loads(fixture("eventgrid-cluster-write.json")), "ActivityLog"))
    print("  Event Grid  POST /ActivityLog           %d  committed %d, duplicates %d"
          % (code, r["ReturnValue"]["committed"], r["ReturnValue"]["duplicates"]))
    code, r = post(base + "/api/activitylog/alert", fixture("alert-cluster-write.json"))
    print("  alert       POST /api/activitylog/alert %d  %s (signal %s)" % (code, r["result"], r["signal"]))
    code, r = stream(base, [fixture("export-cluster-write.json")])
    v = r["ReturnValue"]
    print("  export      POST /ActivityLogStream     %d  %d records: committed %d, duplicates %d, ignored %d (not AKS)"
          % (code, v["records"], v["committed"], v["duplicates"], v["ignored"]))


def aks_failure(base):
    corr = "4e6a8c0e-2b4d-4f6a-8c0e-2b4d6f8a0c2e"
    res = CHECKOUT.upper() + "/AGENTPOOLS/SYSTEM"
    scope = CHECKOUT + "/agentPools/system"
    spn = {"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/spn": "Microsoft.ContainerService"}
    records = [
        {"time": "2026-11-11T02:02:08.1200000Z", "resourceId": res,
         "operationName": "MICROSOFT.CONTAINERSERVICE/MANAGEDCLUSTERS/AGENTPOOLS/WRITE", "category": "Write",
         "resultType": "Start", "resultSignature": "Started.", "durationMs": 0, "callerIpAddress": "",
         "correlationId": corr, "identity": {"authorization": {"scope": scope,
            "action": "Microsoft.ContainerService/managedClusters/agentPools/write"}, "claims": spn},
         "level": "Information", "location": "global",
         "properties": {"eventCategory": "Administrative", "eventName": "BeginRequest", "entity": scope}},
        {"time": "2026-11-11T02:41:09.1800000Z", "resourceId": res,
         "operationName": "MICROSOFT.CONTAINERSERVICE/MANAGEDCLUSTERS/AGENTPOOLS/WRITE", "category": "Write",
         "resultType": "Failure", "resultSignature": "Failed.InternalServerError", "durationMs": "2341060",
         "callerIpAddress": "", "correlationId": corr,
         "identity": {"authorization": {"scope": scope,
            "action": "Microsoft.ContainerService/managedClusters/agentPools/write"}, "claims": spn},
         "level": "Error", "location": "global",
         "properties": {"eventCategory": "Administrative", "eventName": "EndRequest", "entity": scope,
                        "statusCode": "InternalServerError",
                        "statusMessage": "Upgrade Failed, error: {\"code\":\"UpgradeFailed\",\"message\":\"Drain node aks-system-31415926-vmss000002 failed when evicting pod checkout-api-5f7d8c9b4-x2lqp: Cannot evict pod as it would violate the pod's disruption budget.\"}"}},
    ]
    code, r = stream(base, [json.dumps({"records": records})])
    v = r["ReturnValue"]
    print("  export      POST /ActivityLogStream     %d  committed %d, duplicates %d" % (code, v["committed"], v["duplicates"]))


def show(base):
    for name, path in CLUSTERS:
        with urllib.request.urlopen(base + "/api/clusters/" + path, timeout=10) as r:
            d = json.load(r)
        print("  " + name)
        for ch in (d.get("channelChanges") or {}).values():
            print("    %s channel %s -> %s at %s by %s" % (ch["channel"], ch["from"], ch["to"], ch["at"], ch.get("actor") or "(unknown)"))
        for u in d["upgrades"]:
            who = ""
            if u.get("trigger"):
                who = "%s, asked by %s" % (u["trigger"], u.get("requestedBy") or "?")
            if u.get("channelChange"):
                c = u["channelChange"]
                who += "; first after %s's change %s -> %s" % (c.get("actor") or "?", c["from"], c["to"])
            for f in u.get("failures") or []:
                who += "; failure by %s: %s" % (f.get("actor") or "?", (f.get("message") or f["status"])[:110])
            print("    %-9s %-9s %s %s" % (u["pool"], u["outcome"], (u.get("startedAt") or u.get("endedAt"))[:16], who))
        for a in d.get("activity", [])[:4]:
            print("    activity  %s %-17s %-9s %-28s via %s" % (a["at"][:19], a["operation"], a["status"], a.get("actor", ""), a.get("receivedVia", "")))


if __name__ == "__main__":
    base, what = sys.argv[1], sys.argv[2]
    {"three-paths": three_paths, "aks-failure": aks_failure, "show": show}[what](base)
