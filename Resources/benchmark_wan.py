"""The benchmark's timed rows, for one network profile at a time (Resources/benchmark.py runs it).

A profile is a round-trip time and a bandwidth per direction. On a WAN profile the plugin reaches
the simulator (API, token and the presigned URLs, through the simulator's --public-url) through
one delaying relay (Resources/wan_relay.py), and the peer Orthanc's DICOM and HTTP ports sit
behind relays of their own with the same profile, so C-STORE and STOW-RS cross the same "WAN".
Loopback has no relay.

Rows, per workload: the limit (curl, the same concurrency as the plugin's Instances row,
through the same relay), the plugin in Instances, Zip and Auto (Concurrency "auto"), C-STORE and
STOW-RS; on WAN profiles also the bandwidth-delay bound (bytes / bandwidth + the round trips a
send cannot avoid). Each plugin row is a manual send (POST /cloud-ingest/studies/{id}/send) of a
study already stored in Orthanc, timed from its `queued` history record to the last instance the
store accepted (the simulator's receive time), both on this machine's clock.
"""

import contextlib
import json
import os
import shutil
import statistics
import time
import urllib.parse

import cloudtest
import harness
import wan_relay
from benchmark_common import (DICOMWEB_PLUGIN, MB, BenchmarkFailure, audit_breakdown,
                              cpu_seconds, generate, latest_batch_by_order, log, measure_limit,
                              measure_peer, parse_iso, settle, verdict)

# name: (round-trip time in ms, Mbit/s per direction); loopback has no relay.
PROFILES = {"loopback": (0, 0), "wan20": (20, 1000), "wan80": (80, 100), "wan40": (40, 100)}
FULL_PROFILES = ["loopback", "wan20", "wan80"]
SMOKE_PROFILES = ["loopback", "wan40"]
# Exchanges a send of one study cannot avoid, one round trip each: token, new-order, one
# presigned URL, one PUT, add-metadata.
UNAVOIDABLE_ROUND_TRIPS = 5
# The done-when targets on loopback, for the plugin's Instances row: plugin/peer and
# plugin/limit ratios per workload. On WAN profiles: Auto beats both peers (< 1) and, on (a),
# Auto / bound <= WAN_BOUND_TARGET.
LOOPBACK_TARGETS = {"a": {"dicom": 0.6, "stow": 0.6, "limit": 1.3},
                    "b": {"dicom": 0.8, "stow": 0.8, "limit": 1.5}}
WAN_BOUND_TARGET = 1.25
PLUGIN_ROWS = ("instances", "zip", "auto")
MODE_EVENTS = ("upload-plan", "mode-chosen")
PEER_ROWS = ("dicom", "stow")


def plugin_supports_auto(plugin_path):
    """Whether this plugin build knows Concurrency "auto" and UploadMode "Auto" (it then has
    the MaxConcurrency key); older builds refuse both, so their Auto row is left out."""
    with open(plugin_path, "rb") as f:
        return b"MaxConcurrency" in f.read()


class WanBench:
    """The simulator, the plugin's Orthanc (also the peers' sender) and the peer receiver, with
    the profile's relays in front of the simulator and the peer."""

    def __init__(self, args, profile):
        self.args, self.profile = args, profile
        self.rtt_ms, self.mbit = PROFILES[profile]
        self.wan = profile != "loopback"
        self.supports_auto = plugin_supports_auto(args.plugin)
        self.stack = contextlib.ExitStack()
        self.relays = []
        self.mode_config = None

    def __enter__(self):
        try:
            self._start()
        except BaseException:
            self.stack.close()
            raise
        return self

    def __exit__(self, *exc):
        self.stack.close()

    @property
    def fixed_concurrency(self):
        """The Instances row's Concurrency and the limit's: fixed, wider on a WAN."""
        return self.args.wan_concurrency if self.wan else self.args.concurrency

    def relay(self, port, listen_port=0):
        relay = self.stack.enter_context(wan_relay.WanRelay(
            (harness.LOOPBACK, port), rtt_ms=self.rtt_ms, mbit=self.mbit, listen_port=listen_port))
        self.relays.append(relay)
        return relay

    def _start(self):
        args = self.args
        store = ["--fast-store"] if args.store == "fast" else []
        if self.wan:
            # The simulator signs URLs for the relay's address, which must be known first.
            sim_port, relay_port = harness.free_port(), harness.free_port()
            self.sim = self.stack.enter_context(harness.Simulator(
                "--quiet", *store, port=sim_port,
                public_url="http://%s:%d" % (harness.LOOPBACK, relay_port)))
            self.relay(sim_port, relay_port)
            self.public_url = self.sim.url
            # The benchmark's own calls (presigning for the limit, /_sim/ views) skip the WAN.
            self.sim.url = "http://%s:%d" % (harness.LOOPBACK, sim_port)
        else:
            self.sim = self.stack.enter_context(harness.Simulator("--quiet", *store))
            self.public_url = self.sim.url
        dicomweb = [DICOMWEB_PLUGIN]
        # The receiving peer: a plain Orthanc with DICOMweb, without our plugin.
        self.peer = self.stack.enter_context(harness.Orthanc(
            plugins=dicomweb, stable_age=60,
            extra={"Name": "BenchPeer", "DicomAet": "PEER", "DicomWeb": {"Enable": True}}))
        peer_dicom, peer_http = self.peer.dicom_port, self.peer.url
        if self.wan:
            peer_dicom = self.relay(self.peer.dicom_port).port
            peer_http = self.relay(self.peer.http_port).url
        self.mode_config = "fixed"
        # HttpTimeout bounds a whole request of Orthanc's own HTTP client: a STOW-RS of 250 MB
        # takes 20 s at 100 Mbit/s.
        self.orthanc = self.stack.enter_context(harness.Orthanc(
            cloud_ingest=self.section("fixed"), plugins=[args.plugin] + dicomweb,
            stable_age=args.stable_age, http_timeout=600,
            modalities={"peer": ["PEER", harness.LOOPBACK, peer_dicom]},
            extra={"DicomWeb": {"Enable": True, "Servers": {
                "peer": [peer_http + "/dicom-web/", self.peer.auth[0], self.peer.auth[1]]}}}))
        self.token = self._token()

    def section(self, config, **overrides):
        """The CloudIngest section: "fixed" (Instances, a fixed Concurrency) or "auto"
        (UploadMode Auto, Concurrency "auto" up to MaxConcurrency)."""
        keys = {"Url": self.public_url, "StudyWorkers": self.args.study_workers,
                "AutoSend": False}
        if config == "auto":
            keys.update(UploadMode="Auto", Concurrency="auto",
                        MaxConcurrency=self.args.max_concurrency)
        else:
            keys.update(UploadMode="Instances", Concurrency=self.fixed_concurrency)
        keys.update(overrides)
        return cloudtest.ingest_section(self.sim, **keys)

    def use_config(self, config):
        if config != self.mode_config:
            self.orthanc.restart({"CloudIngest": self.section(config)})
            self.mode_config = config

    def _token(self):
        query = urllib.parse.urlencode({"grant_type": "client_credentials",
                                        "scope": self.sim.scope or "upload"})
        status, _, body = harness.http_request(
            "GET", self.sim.url + "/auth/token?" + query,
            auth=(self.sim.client_id, self.sim.client_secret))
        if status != 200:
            raise BenchmarkFailure("the simulator refused a token: HTTP %s" % status)
        return json.loads(body)["access_token"]

    def api(self, method, path, body=None):
        status, headers, raw = harness.http_request(
            method, self.sim.url + path, body, headers={"Authorization": "Bearer " + self.token})
        if status != 200:
            raise BenchmarkFailure("%s %s: HTTP %s %s" % (method, path.split("?")[0], status,
                                                         raw[:200]))
        return json.loads(raw)

    def describe(self):
        if not self.wan:
            return "loopback (no relay)"
        return "%s: %d ms RTT, %d Mbit/s per direction (wan_relay.py)" % (
            self.profile, self.rtt_ms, self.mbit)

    def bound(self, bytes_total):
        """Bytes / bandwidth + the round trips a send cannot avoid (None without a cap)."""
        if not self.mbit:
            return None
        return bytes_total * 8 / (self.mbit * 1e6) + UNAVOIDABLE_ROUND_TRIPS * self.rtt_ms / 1000


def store_study(bench, study):
    """Stores the study in the plugin's Orthanc (AutoSend is off); returns its Orthanc id."""
    started = time.monotonic()
    harness.storescu(bench.orthanc.dicom_port, [p for p, _ in study["instances"]], timeout=1800)
    study_id = cloudtest.orthanc_study_id(bench.orthanc, study["study_uid"])
    study["expected_md5"] = cloudtest.stored_md5s(bench.orthanc, study_id)
    log("stored %d instances in Orthanc in %.1f s" % (len(study["instances"]),
                                                      time.monotonic() - started))
    return study_id


def measure_send(bench, study, study_id, mode=None):
    """A manual send of a stored study: seconds from its `queued` record to the last instance
    accepted, and what the history says about the mode chosen. Checks (untimed) that the store
    holds every instance byte-identical to Orthanc's file."""
    orthanc, sim = bench.orthanc, bench.sim
    uid, count = study["study_uid"], len(study["instances"])
    settle()
    cpu_before = cpu_seconds(orthanc.pid), cpu_seconds(sim.pid)
    requested = time.time()
    orthanc.post("/cloud-ingest/studies/%s/send" % study_id, {"mode": mode} if mode else {},
                 expect_status=[200, 202])

    def sent():
        entry = orthanc.get("/cloud-ingest/studies/" + study_id)
        done_at = entry.get("sent_at")
        if entry["state"] == "failed":
            raise BenchmarkFailure("plugin: the send failed: %s" % entry.get("last_error"))
        return entry if entry["state"] == "sent" and done_at and \
            parse_iso(done_at) >= requested - 0.01 else None
    entry = orthanc.wait_for(sent, timeout=max(300, count), interval=0.1,
                             message="the study sent")
    cpu = {"orthanc": cpu_seconds(orthanc.pid) - cpu_before[0],
           "simulator": cpu_seconds(sim.pid) - cpu_before[1]}
    history = [h for h in entry.get("history", []) if parse_iso(h["time"]) >= requested - 0.01]
    queued = [parse_iso(h["time"]) for h in history if h["event"] == "queued"]
    t_start = min(queued) if queued else requested
    received = latest_batch_by_order(sim, uid, entry["order_id"])
    if len(received) != count:
        raise BenchmarkFailure("plugin: the simulator holds %d of %d instances"
                               % (len(received), count))
    got = {sop: i["md5"] for sop, i in received.items()}
    if got != study["expected_md5"]:
        bad = sum(1 for sop in study["expected_md5"] if got.get(sop) != study["expected_md5"][sop])
        raise BenchmarkFailure("plugin: %d instances differ from Orthanc's files" % bad)
    t_last = max(parse_iso(i["time"]) for i in received.values())
    steps = audit_breakdown(orthanc, entry["order_id"])
    # The simulator names an instance that came in a ZIP "<zip name>:<entry>".
    sources = sorted({":" in i.get("filename", "") for i in received.values()})
    info = {
        "pickup": steps.get("order_created:first", t_start) - t_start,
        "uploads": steps.get("upload_ok:last", t_last) - steps.get("order_created:first",
                                                                   t_start),
        "metadata": steps.get("metadata_added:last", t_last) - steps.get("upload_ok:last",
                                                                         t_last),
        "cpu": cpu,
        "sent_as": "Zip" if sources == [True] else "Instances",
        # How Auto decided (the plugin's "upload-plan" history entry).
        "mode_history": [h for h in history if h["event"] in MODE_EVENTS],
    }
    return t_last - t_start, info


def run_workload(bench, name, count, size_kb, repeats, workdir):
    """Every row of one workload, `repeats` times on fresh studies."""
    rows = ["limit", "instances", "zip"] + (["auto"] if bench.supports_auto else []) + \
        list(PEER_ROWS)
    res = {k: [] for k in rows + ["presign", "direct"]}
    res.update(sends={k: [] for k in PLUGIN_ROWS}, limit_cpu=[], connections=[])
    studies = []
    for r in range(repeats):
        run_dir = os.path.join(workdir, "%s-%s-%d" % (bench.profile, name, r))
        study = generate(run_dir, "study", count, size_kb)
        study["dir"] = run_dir
        study["bytes"] = sum(os.path.getsize(p) for p, _ in study["instances"])
        seconds, info = measure_limit(bench, study, run_dir,
                                      concurrency=bench.fixed_concurrency)
        res["limit"].append(seconds)
        res["presign"].append(info["presign_seconds"])
        res["connections"].append(info["connections"])
        res["limit_cpu"].append(info["cpu"])
        if bench.args.store == "strict" and not bench.wan:
            res["direct"].append(measure_limit(bench, study, run_dir, direct=True,
                                               presigned=info["presigned"])[0])
        log("[%s] %s run %d: limit %.2f s (%d connections), presigning %.2f s" % (
            bench.profile, name, r + 1, seconds, info["connections"], info["presign_seconds"]))
        study["id"] = store_study(bench, study)
        studies.append(study)
    # Fewest restarts: every study in the fixed configuration, then every one in Auto.
    for config, sends in (("fixed", (("instances", "Instances"), ("zip", "Zip"))),
                          ("auto", (("auto", None),))):
        if config == "auto" and not bench.supports_auto:
            continue
        bench.use_config(config)
        for r, study in enumerate(studies):
            for row, mode in sends:
                seconds, info = measure_send(bench, study, study["id"], mode)
                res[row].append(seconds)
                res["sends"][row].append(info)
                log("[%s] %s run %d: plugin %s %.2f s (sent as %s; pickup %.2f, uploads %.2f, "
                    "metadata %.2f)%s" % (bench.profile, name, r + 1, row, seconds,
                                          info["sent_as"], info["pickup"], info["uploads"],
                                          info["metadata"],
                                          " %s" % info["mode_history"] if info["mode_history"]
                                          else ""))
    bench.use_config("fixed")
    for r, study in enumerate(studies):
        for kind in PEER_ROWS:
            res[kind].append(measure_peer(bench, study["id"], count, kind))
            log("[%s] %s run %d: peer %s %.2f s" % (bench.profile, name, r + 1, kind,
                                                    res[kind][-1]))
        bench.orthanc.delete("/studies/" + study["id"])
        shutil.rmtree(study["dir"], ignore_errors=True)
    res["bytes"] = studies[0]["bytes"]
    res["rows"] = rows
    return res


ROW_LABELS = {
    "limit": "limit: curl --parallel %(conc)d, keep-alive",
    "instances": "plugin Instances, Concurrency %(conc)d",
    "zip": "plugin Zip (one PUT)",
    "auto": "plugin Auto, Concurrency auto (max %(max)d)",
    "dicom": "peer: Orthanc C-STORE to a second Orthanc",
    "stow": "peer: Orthanc STOW-RS to a second Orthanc",
    "bound": "(info) bandwidth-delay bound",
    "direct": "(info) curl straight to the S3 store, no proxy",
    "presign": "(info) presigning the URLs, %(conc)d threads",
}


def cpu_medians(res):
    """Where the CPU went, median seconds over the runs: the limit's simulator and curl, and
    each plugin row's Orthanc (with the plugin) and simulator."""
    rows = {"limit": res["limit_cpu"]}
    rows.update((key, [s["cpu"] for s in res["sends"][key]]) for key in PLUGIN_ROWS)
    return {row: {who: statistics.median(s[who] for s in samples)
                  for who in sorted(samples[0])}
            for row, samples in rows.items() if samples}


def report_workload(bench, name, count, size_kb, res, targets):
    """Prints one workload's table and ratios; appends (label, value, op, target, ok) to
    targets; returns the workload's JSON report."""
    args = bench.args
    med = {k: statistics.median(v) for k, v in res.items()
           if k in ROW_LABELS and isinstance(v, list) and v and None not in v}
    mb = res["bytes"] / MB
    bound = bench.bound(res["bytes"])
    if bound is not None:
        med["bound"] = bound
    values = {"conc": bench.fixed_concurrency, "max": args.max_concurrency}
    header = "workload %s" % name if not bench.wan else "[%s] workload %s" % (bench.profile, name)
    print()
    print("%s: %d instances x %d KB (%.1f MB), %s, StudyWorkers %d, median of %d run(s)" % (
        header, count, size_kb, mb, bench.describe(), args.study_workers, len(res["limit"])))
    print("  %-52s %8s %8s %8s %9s" % ("measurement", "median s", "best s", "MB/s", "inst/s"))
    for key in ("limit",) + PLUGIN_ROWS + PEER_ROWS + ("bound", "direct", "presign"):
        if key not in med:
            continue
        label = ROW_LABELS[key] % values
        if key in PLUGIN_ROWS:
            chosen = sorted({s["sent_as"] for s in res["sends"][key]})
            if key == "auto":
                label += ": sent as " + "/".join(chosen)
        best = min(res[key]) if key in res and isinstance(res[key], list) else med[key]
        print("  %-52s %8.2f %8.2f %8.1f %9.0f" % (label, med[key], best, mb / med[key],
                                                  count / med[key]))
    if "auto" not in med:
        print("  (plugin Auto: this plugin build has no UploadMode Auto / Concurrency auto)")
    print("  all runs (s): " + "; ".join(
        "%s %s" % (k, " ".join("%.2f" % v for v in res[k]))
        for k in ("limit",) + PLUGIN_ROWS + PEER_ROWS if res.get(k)))
    cpu = cpu_medians(res)
    if cpu:
        print("  cpu s (median): " + "; ".join(
            "%s: %s" % (row, ", ".join("%s %.2f" % (who, v) for who, v in parts.items()))
            for row, parts in cpu.items()))
    for key in (k for k in PLUGIN_ROWS if res["sends"][k]):
        history = [h for s in res["sends"][key] for h in s["mode_history"]]
        if history:
            print("  %s: mode history %s" % (key, "; ".join(
                "%s %s" % (h["event"], h.get("detail", "")) for h in history[:2])))

    def ratio(a, b):
        return med[a] / med[b] if a in med and b in med else None
    ratios = {}
    for plugin in (k for k in PLUGIN_ROWS if k in med):
        for other in ("limit",) + PEER_ROWS + ("bound",):
            value = ratio(plugin, other)
            if value is not None:
                ratios["%s/%s" % (plugin, other)] = value
    # The headline rows: Instances on loopback (the default configuration), Auto on a WAN.
    headline = "instances" if not bench.wan else ("auto" if "auto" in med else "instances")
    for other, label in (("limit", "limit"), ("dicom", "dicom"), ("stow", "stow")):
        value = ratios.get("%s/%s" % (headline, other))
        if value is None:
            continue
        goal = None
        if not bench.wan:
            goal = ("<=" if other == "limit" else "<", LOOPBACK_TARGETS.get(name, {}).get(other))
        elif other != "limit":
            goal = ("<", 1.0)
        per_run = [p / o for p, o in zip(res[headline], res[other])]
        text = "  ratio plugin/%s %.2f  (%s" % (label, value, headline)
        if goal and goal[1] is not None:
            ok = value <= goal[1] if goal[0] == "<=" else value < goal[1]
            text += "; target %s %.2f) %s" % (goal[0], goal[1], verdict(ok))
            targets.append(("%s (%s) plugin %s/%s" % (bench.profile, name, headline,
                                                      "C-STORE" if other == "dicom" else
                                                      "STOW-RS" if other == "stow" else other),
                            value, goal[0], goal[1], ok))
        else:
            text += ")"
        print(text + ";  per run " + " ".join("%.2f" % x for x in per_run))
    if bench.wan and "auto" in med and "bound" in med:
        value = ratios["auto/bound"]
        line = "  ratio plugin Auto/bandwidth-delay bound %.2f" % value
        if name == "a":
            ok = value <= WAN_BOUND_TARGET
            line += "  (target <= %.2f) %s" % (WAN_BOUND_TARGET, verdict(ok))
            targets.append(("%s (a) plugin Auto/bound" % bench.profile, value, "<=",
                            WAN_BOUND_TARGET, ok))
        print(line)
    other_ratios = ["%s %.2f" % (k, v) for k, v in sorted(ratios.items())]
    print("  every ratio: " + ", ".join(other_ratios))
    return {"median": med, "ratios": ratios, "headline": headline,
            "runs": {k: res[k] for k in res if isinstance(res[k], list)},
            "bytes": res["bytes"], "connections": res["connections"], "cpu": cpu,
            "profile": {"name": bench.profile, "rtt_ms": bench.rtt_ms, "mbit": bench.mbit},
            "auto_sent_as": [s["sent_as"] for s in res["sends"]["auto"]],
            "auto_mode_history": [s["mode_history"] for s in res["sends"]["auto"]]}
