#!/usr/bin/python3
"""Performance benchmark of the plugin's send path, against the link's limit and two peers.

One run on this machine, with the project's own tools only (Orthanc, the plugin, the cloud
simulator, DCMTK, curl, valgrind, Debian's orthanc-dicomweb):

  limit   the study's files PUT by `curl --parallel` (keep-alive) to presigned URLs issued by
          the simulator for this run (presigning not timed). The URLs are the ones the plugin
          gets: they go through the simulator's upload proxy to its S3 store, so both pay the
          same path. An informational row times the same PUTs straight to the store.
  plugin  from the StableStudy event (the plugin's "queued" record, written in Orthanc's
          OnChange callback) to the last instance accepted by the store (the simulator's
          per-instance receive time), both clocks of this machine, millisecond precision.
  peers   what a user would otherwise script: Orthanc's own C-STORE of the study to a second
          Orthanc (/modalities/{m}/store) and its DICOMweb STOW-RS client
          (/dicom-web/servers/{name}/stow), both synchronous, timed around the REST call.

Workloads (full run): (a) 500 instances of about 512 KB, (b) 2,000 instances of about 10 KB;
each measured --repeats times on fresh studies, the median reported. Then Orthanc's peak RSS
growth while the plugin sends 2 GB (4,000 x 512 KB), and the instructions per instance of the
unit-level upload path (UnitTests/Bench/UploadPathBench under callgrind).

    /usr/bin/python3 Resources/benchmark.py            # full run (about 15 minutes)
    /usr/bin/python3 Resources/benchmark.py --smoke    # small sizes, used by the test suite
    /usr/bin/python3 Resources/benchmark.py --workload a --concurrency 8

The plugin is $CLOUD_INGEST_PLUGIN or build/libOrthancCloudIngest.so. Exit status: 0 unless
something failed functionally (an upload refused, an instance missing or different, a server
that did not start). Timings never change the exit status.
"""

import argparse
import concurrent.futures
import contextlib
import datetime
import json
import os
import platform
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.join(REPO_ROOT, "UnitTests", "Integration"))

import cloudtest  # noqa: E402  (after the path insert)
import gen_study  # noqa: E402
import harness  # noqa: E402

DICOMWEB_PLUGIN = os.environ.get("ORTHANC_DICOMWEB_PLUGIN",
                                 "/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
MB = 1024 * 1024

# name: (instances, size in KiB, plugin/limit target)
FULL_WORKLOADS = {"a": (500, 512, 1.25), "b": (2000, 10, 1.5)}
SMOKE_WORKLOADS = {"a": (16, 512, 1.25), "b": (60, 10, 1.5)}
FULL_RSS = (4000, 512)  # 2 GiB
SMOKE_RSS = (40, 512)
RSS_TARGET_MB = 64
FULL_CALLGRIND = (100, 500)  # instance counts whose difference gives Ir per instance
SMOKE_CALLGRIND = (10, 30)
CALLGRIND_SIZE = 10240


class BenchmarkFailure(Exception):
    """Something did not work (as opposed to being slow): the run exits non-zero."""


def log(message):
    sys.stdout.flush()
    sys.stderr.write("[%s] %s\n" % (time.strftime("%H:%M:%S"), message))
    sys.stderr.flush()


def settle():
    """Before a timed step: write back dirty pages (the files just generated or stored) so
    that the step does not pay for the previous step's disk writes."""
    os.sync()
    time.sleep(0.2)


def cpu_seconds(pid):
    """User + system CPU seconds a live process has used so far."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def parse_iso(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


# ----------------------------------------------------------------------------- servers

class Bench:
    """The simulator, the plugin's Orthanc (also the peers' sender) and the peer receiver."""

    def __init__(self, args):
        self.args = args
        self.stack = contextlib.ExitStack()

    def __enter__(self):
        try:
            self._start()
        except BaseException:
            self.stack.close()
            raise
        return self

    def __exit__(self, *exc):
        self.stack.close()

    def _start(self):
        args = self.args
        self.sim = self.stack.enter_context(harness.Simulator("--quiet"))
        dicomweb = [DICOMWEB_PLUGIN]
        # The receiving peer: a plain Orthanc with DICOMweb, without our plugin.
        self.peer = self.stack.enter_context(harness.Orthanc(
            plugins=dicomweb, stable_age=60,
            extra={"Name": "BenchPeer", "DicomAet": "PEER", "DicomWeb": {"Enable": True}}))
        section = cloudtest.ingest_section(self.sim, Concurrency=args.concurrency,
                                           StudyWorkers=args.study_workers)
        self.orthanc = self.stack.enter_context(harness.Orthanc(
            cloud_ingest=section, plugins=[args.plugin] + dicomweb, stable_age=args.stable_age,
            modalities={"peer": ["PEER", harness.LOOPBACK, self.peer.dicom_port]},
            extra={"DicomWeb": {"Enable": True, "Servers": {
                "peer": [self.peer.url + "/dicom-web/", self.peer.auth[0], self.peer.auth[1]]}}}))
        self.token = self._token()

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


# ----------------------------------------------------------------------------- measurements

def generate(workdir, name, count, size_kb):
    started = time.monotonic()
    study = gen_study.generate_study(os.path.join(workdir, name), series=1, instances=count,
                                     size_kb=size_kb, patient_name="Bench^" + name.upper(),
                                     study_description="Benchmark " + name)
    log("generated %s: %d x %d KB in %.1f s" % (name, count, size_kb,
                                               time.monotonic() - started))
    return study


def latest_batch_by_order(sim, study_uid, order_id):
    """{sop_uid: instance} of the study's latest batch whose last upload came from order_id."""
    study = sim.studies().get(study_uid) or {}
    batches = study.get("batches") or []
    if not batches:
        return {}
    return {i["sop_instance_uid"]: i for i in batches[-1]["instances"]
            if i.get("order_id") == order_id}


def measure_limit(bench, study, workdir, direct=False, presigned=None):
    """PUT every file with curl --parallel (keep-alive). Returns (seconds, info)."""
    sim, args = bench.sim, bench.args
    uid = study["study_uid"]
    if presigned is None:
        order = bench.api("POST", "/new-order", {"study_instance_uid": uid})["order_id"]

        def presign(item):
            path, sop = item
            query = urllib.parse.urlencode({
                "order_id": order, "filename": sop + ".dcm", "content_type": "application/dicom",
                "study_uid": uid, "size": os.path.getsize(path)})
            return path, bench.api("GET", "/upload?" + query)["url"]
        started = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(args.concurrency) as pool:
            presigned = order, list(pool.map(presign, study["instances"]))
        presign_seconds = time.monotonic() - started
    else:
        presign_seconds = None
    order, targets = presigned
    config_path = os.path.join(workdir, "curl-%s.conf" % ("direct" if direct else "proxy"))
    with open(config_path, "w") as f:
        for path, url in targets:
            f.write('url = "%s"\nupload-file = "%s"\noutput = "/dev/null"\n' % (url, path))
    command = ["curl", "--silent", "--show-error", "--noproxy", "*", "--parallel",
               "--parallel-immediate", "--parallel-max", str(args.concurrency),
               "-H", "Content-Type: application/dicom", "-H", "Expect:",
               "-w", "%{http_code} %{num_connects}\\n", "-K", config_path]
    if direct:
        # Same URLs (the signature covers the Host header), but connect to the store itself.
        sim_port = urllib.parse.urlsplit(sim.url).port
        store = urllib.parse.urlsplit(sim.info["s3_url"])
        command[1:1] = ["--connect-to", "%s:%d:%s:%d" % (harness.LOOPBACK, sim_port,
                                                          store.hostname, store.port)]
    settle()
    cpu_before = cpu_seconds(sim.pid), children_cpu_seconds()
    started = time.monotonic()
    run = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=harness.loopback_env(), timeout=1800)
    seconds = time.monotonic() - started
    cpu = {"simulator": cpu_seconds(sim.pid) - cpu_before[0],
           "curl": children_cpu_seconds() - cpu_before[1]}
    lines = run.stdout.decode().split()
    codes, connects = lines[0::2], [int(n) for n in lines[1::2]]
    good = codes.count("200")
    if run.returncode != 0 or good != len(targets):
        raise BenchmarkFailure("curl%s: %d of %d PUTs answered 200 (exit %d): %s" % (
            " (direct)" if direct else "", good, len(targets), run.returncode,
            run.stderr.decode("utf-8", "replace")[-500:]))
    if not direct:
        received = latest_batch_by_order(sim, uid, order)
        if len(received) != len(targets):
            raise BenchmarkFailure("limit: the simulator holds %d of %d instances"
                                   % (len(received), len(targets)))
    return seconds, {"connections": sum(connects), "presigned": (order, targets),
                     "presign_seconds": presign_seconds, "cpu": cpu}


def audit_breakdown(orthanc, order_id):
    """Times of the plugin's steps for one order, from its audit log.

    Also the mean time from an instance's url_issued to its upload_ok record in "put_mean"
    (the URL is asked ahead, so this includes the wait for the thread's previous PUT).
    """
    records = [r for r in orthanc.audit_records() if r.get("order_id") == order_id]
    times, issued, puts = {}, {}, []
    for r in records:
        t = parse_iso(r["time"])
        event = r["event"]
        times.setdefault(event + ":first", t)
        times[event + ":last"] = t
        if event == "url_issued":
            issued[r.get("sop_instance_uid")] = t
        elif event == "upload_ok" and r.get("sop_instance_uid") in issued:
            puts.append(t - issued[r["sop_instance_uid"]])
    times["put_mean"] = statistics.mean(puts) if puts else 0.0
    return times


def measure_plugin(bench, study):
    """Store the study with storescu and time StableStudy -> last instance accepted.

    Then checks (untimed) that the store holds every instance byte-identical to Orthanc's file.
    """
    orthanc, sim = bench.orthanc, bench.sim
    uid, count = study["study_uid"], len(study["instances"])
    settle()
    started = time.monotonic()
    harness.storescu(orthanc.dicom_port, [p for p, _ in study["instances"]], timeout=1800)
    stored_at = time.time()
    os.sync()  # within StableAge: the send does not pay for writing back what Orthanc stored
    cpu_before = cpu_seconds(orthanc.pid), cpu_seconds(sim.pid)
    log("stored %d instances in Orthanc in %.1f s" % (count, time.monotonic() - started))
    entry = cloudtest.wait_until_sent(orthanc, uid, timeout=max(120, count * 0.5))
    cpu = {"orthanc": cpu_seconds(orthanc.pid) - cpu_before[0],
           "simulator": cpu_seconds(sim.pid) - cpu_before[1]}
    study_id = entry["orthanc_id"]
    entry = orthanc.get("/cloud-ingest/studies/" + study_id)
    queued = [parse_iso(h["time"]) for h in entry.get("history", []) if h["event"] == "queued"]
    t_stable = min(queued) if queued else parse_iso(entry["created_at"])
    received = latest_batch_by_order(sim, uid, entry["order_id"])
    if len(received) != count or entry["instances_sent"] != count:
        raise BenchmarkFailure("plugin: the simulator holds %d of %d instances (plugin says %d)"
                               % (len(received), count, entry["instances_sent"]))
    expected = cloudtest.stored_md5s(orthanc, study_id)
    got = {sop: i["md5"] for sop, i in received.items()}
    if got != expected:
        bad = sum(1 for sop in expected if got.get(sop) != expected[sop])
        raise BenchmarkFailure("plugin: %d instances differ from Orthanc's files" % bad)
    t_last = max(parse_iso(i["time"]) for i in received.values())
    steps = audit_breakdown(orthanc, entry["order_id"])
    breakdown = {
        "stored_to_stable": t_stable - stored_at,
        "pickup": steps.get("order_created:first", t_stable) - t_stable,
        "uploads": steps.get("upload_ok:last", t_last) - steps.get("order_created:first", t_stable),
        "metadata": steps.get("metadata_added:last", t_last) - steps.get("upload_ok:last", t_last),
        "sent_at": parse_iso(entry["sent_at"]) - t_stable if entry.get("sent_at") else None,
        "put_mean": steps["put_mean"],
        "cpu": cpu,
    }
    # Each of the Concurrency threads spends `cycle` per instance, `put_mean` of it in the PUT.
    threads = min(bench.args.concurrency, count)
    breakdown["cycle"] = breakdown["uploads"] * threads / count
    return t_last - t_stable, study_id, breakdown


def peer_instances(peer, study_id):
    status, _, body = peer.request("GET", "/studies/%s/instances" % study_id)
    return len(json.loads(body)) if status == 200 else 0


def measure_peer(bench, study_id, count, kind):
    """Orthanc forwards the study to the peer (synchronously); seconds around the REST call."""
    orthanc, peer = bench.orthanc, bench.peer
    if peer_instances(peer, study_id):
        peer.delete("/studies/" + study_id)
    path = "/modalities/peer/store" if kind == "dicom" else "/dicom-web/servers/peer/stow"
    settle()
    started = time.monotonic()
    orthanc.post(path, {"Resources": [study_id], "Synchronous": True}, timeout=1800)
    seconds = time.monotonic() - started
    got = peer_instances(peer, study_id)
    if got != count:
        raise BenchmarkFailure("peer %s: the receiving Orthanc holds %d of %d instances"
                               % (kind, got, count))
    peer.delete("/studies/" + study_id)
    return seconds


def run_workload(bench, name, count, size_kb, repeats, workdir):
    results = {"limit": [], "direct": [], "plugin": [], "dicom": [], "stow": [],
               "presign": [], "breakdown": [], "connections": [], "limit_cpu": []}
    for r in range(repeats):
        run_dir = os.path.join(workdir, "%s-%d" % (name, r))
        study = generate(run_dir, "study", count, size_kb)
        bytes_total = sum(os.path.getsize(p) for p, _ in study["instances"])

        seconds, info = measure_limit(bench, study, run_dir)
        results["limit"].append(seconds)
        results["connections"].append(info["connections"])
        results["presign"].append(info["presign_seconds"])
        results["limit_cpu"].append(info["cpu"])
        results["direct"].append(measure_limit(bench, study, run_dir, direct=True,
                                               presigned=info["presigned"])[0])
        log("%s run %d: limit %.2f s (%d connections), store direct %.2f s, presigning %.2f s"
            % (name, r + 1, seconds, info["connections"], results["direct"][-1],
               info["presign_seconds"]))
        # The limit's PUTs and the plugin's may share a batch in the simulator: the checks
        # count only the instances whose last upload came from the order being checked.
        seconds, study_id, breakdown = measure_plugin(bench, study)
        results["plugin"].append(seconds)
        results["breakdown"].append(breakdown)
        log("%s run %d: plugin %.2f s (StableStudy %.1f s after storing; pickup %.2f, "
            "uploads %.2f, metadata %.2f)"
            % (name, r + 1, seconds, breakdown["stored_to_stable"], breakdown["pickup"],
               breakdown["uploads"], breakdown["metadata"]))
        for kind in ("dicom", "stow"):
            results[kind].append(measure_peer(bench, study_id, count, kind))
            log("%s run %d: peer %s %.2f s" % (name, r + 1, kind, results[kind][-1]))
        bench.orthanc.delete("/studies/" + study_id)
        shutil.rmtree(run_dir, ignore_errors=True)
    results["bytes"] = bytes_total
    return results


# ----------------------------------------------------------------------------- memory

def read_status(pid):
    values = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) * 1024
    return values


def send_and_sample(orthanc, sim, study_id, study_uid, count, body=None):
    """Manual send of a stored study by a freshly started Orthanc; its RSS sampled meanwhile."""
    settle()
    time.sleep(2)  # let start-up settle (plugin threads, first REST answers)
    pid = orthanc.pid
    with open("/proc/%d/clear_refs" % pid, "w") as f:
        f.write("5")  # VmHWM := VmRSS
    baseline = read_status(pid)["VmRSS"]
    samples = []
    done = threading.Event()

    def sample():
        while not done.is_set():
            with contextlib.suppress(OSError):
                samples.append(read_status(pid)["VmRSS"])
            done.wait(0.02)
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    requested = time.time()
    try:
        orthanc.post("/cloud-ingest/studies/%s/send" % study_id, body or {},
                     expect_status=[200, 202])

        def sent():
            entry = orthanc.get("/cloud-ingest/studies/" + study_id)
            done_at = entry.get("sent_at")
            return entry if entry["state"] == "sent" and done_at and \
                parse_iso(done_at) >= requested - 0.01 else None
        entry = orthanc.wait_for(sent, timeout=max(300, count), interval=0.5,
                                 message="the study sent")
    finally:
        done.set()
        sampler.join()
    peak = max([read_status(pid)["VmHWM"]] + samples)
    received = latest_batch_by_order(sim, study_uid, entry["order_id"])
    if len(received) != count:
        raise BenchmarkFailure("rss: the simulator holds %d of %d instances"
                               % (len(received), count))
    t_last = max(parse_iso(i["time"]) for i in received.values())
    return {"baseline": baseline, "peak": peak, "growth": peak - baseline,
            "samples": len(samples), "seconds": t_last - requested}


def measure_rss(bench, workdir, count, size_kb):
    """Peak RSS growth of a fresh Orthanc process while the plugin sends count x size_kb.

    The study is stored with AutoSend off, then Orthanc restarts (so what receiving it cost is
    not counted) and the send is requested through the plugin's REST route. Twice: with
    Orthanc's default storage cache (MaximumStorageCacheSize 128 MB, filled by the plugin's
    reads) and with the cache off, to separate Orthanc's cache from the plugin's own memory.
    """
    study = generate(os.path.join(workdir, "rss"), "study", count, size_kb)
    bytes_total = sum(os.path.getsize(p) for p, _ in study["instances"])
    section = cloudtest.ingest_section(bench.sim, Concurrency=bench.args.concurrency,
                                       StudyWorkers=bench.args.study_workers, AutoSend=False)
    # Timeout bounds a stall of an upload, not its length; but the simulator reads a ZIP back
    # and checks every entry before it answers the PUT (about 20 s for 2 GB here), and no byte
    # moves meanwhile: the Zip variant allows for that.
    zip_section = dict(section, Timeout=120)
    results = {"bytes": bytes_total, "count": count}
    with harness.Orthanc(cloud_ingest=section, plugins=[bench.args.plugin],
                         stable_age=bench.args.stable_age) as orthanc:
        started = time.monotonic()
        harness.storescu(orthanc.dicom_port, [p for p, _ in study["instances"]], timeout=3600)
        log("rss: stored %.0f MB in %.1f s" % (bytes_total / MB, time.monotonic() - started))
        shutil.rmtree(os.path.join(workdir, "rss"), ignore_errors=True)
        study_id = cloudtest.orthanc_study_id(orthanc, study["study_uid"])
        for variant, update, body in (
                ("default", {}, None),
                ("nocache", {"MaximumStorageCacheSize": 0}, None),
                ("zip", {"MaximumStorageCacheSize": 128, "CloudIngest": zip_section},
                 {"mode": "Zip"})):
            orthanc.restart(update)
            results[variant] = send_and_sample(orthanc, bench.sim, study_id,
                                               study["study_uid"], count, body)
            log("rss %s: %s" % (variant, results[variant]))
    return results


# ----------------------------------------------------------------------------- callgrind

def _sanitized(path):
    with open(path, "rb") as f:
        return b"__asan_init" in f.read()


def find_build_dir(args):
    for candidate in (os.environ.get("CLOUD_INGEST_BUILD_DIR"), os.path.dirname(args.plugin),
                      os.path.join(REPO_ROOT, "build")):
        if candidate and os.path.isfile(os.path.join(candidate, "CMakeCache.txt")):
            yield candidate


def bench_binary(args):
    """The UploadPathBench executable: given, or brought up to date by CMake in the plugin's
    build folder (valgrind cannot run a sanitizer build)."""
    if args.bench_binary:
        return args.bench_binary, "given"
    for build in find_build_dir(args):
        run = subprocess.run(["cmake", "--build", build, "--target", "UploadPathBench"],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=900)
        if run.returncode != 0:
            raise BenchmarkFailure("cannot build UploadPathBench in %s:\n%s" % (
                build, run.stdout.decode("utf-8", "replace")[-3000:]))
        exe = os.path.join(build, "UploadPathBench")
        if _sanitized(exe):
            raise BenchmarkFailure("%s is built with sanitizers, which valgrind cannot run; "
                                   "use a plain build or --bench-binary" % exe)
        return exe, "built by CMake in " + build
    raise BenchmarkFailure("no CMake build folder (set CLOUD_INGEST_BUILD_DIR or --bench-binary)")


def callgrind_ir(exe, instances, workdir):
    out = os.path.join(workdir, "callgrind.%d.out" % instances)
    run = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out, exe,
                          str(instances), str(CALLGRIND_SIZE), "1"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=1800)
    if run.returncode != 0:
        raise BenchmarkFailure("UploadPathBench %d under callgrind failed (exit %d):\n%s" % (
            instances, run.returncode, run.stderr.decode("utf-8", "replace")[-2000:]))
    with open(out) as f:
        for line in f:
            if line.startswith(("totals:", "summary:")):
                return int(line.split()[1])
    raise BenchmarkFailure("no totals in " + out)


def measure_callgrind(args, workdir, counts):
    if not shutil.which("valgrind"):
        raise BenchmarkFailure("valgrind is not installed (apt-get install valgrind)")
    exe, how = bench_binary(args)
    n1, n2 = counts
    ir1, ir2 = callgrind_ir(exe, n1, workdir), callgrind_ir(exe, n2, workdir)
    return {"binary": how, "n1": n1, "n2": n2, "ir1": ir1, "ir2": ir2,
            "per_instance": (ir2 - ir1) / (n2 - n1)}


# ----------------------------------------------------------------------------- report

def verdict(ok):
    return "ok" if ok else "MISSED"


def print_workload(name, count, size_kb, target, res, args):
    keys = ("limit", "direct", "presign", "plugin", "dicom", "stow")
    med = {k: statistics.median(res[k]) for k in keys}
    mb = res["bytes"] / MB
    print()
    print("workload %s: %d instances x %d KB (%.1f MB), Concurrency %d, StudyWorkers %d, "
          "median of %d run(s)" % (name, count, size_kb, mb, args.concurrency,
                                   args.study_workers, len(res["plugin"])))
    print("  %-52s %8s %8s %8s %9s" % ("measurement", "median s", "best s", "MB/s",
                                          "inst/s"))
    rows = [("limit: curl --parallel %d, keep-alive, via the proxy" % args.concurrency, "limit"),
            ("plugin: StableStudy -> last instance accepted", "plugin"),
            ("peer: Orthanc C-STORE to a second Orthanc", "dicom"),
            ("peer: Orthanc DICOMweb STOW-RS to a second Orthanc", "stow"),
            ("(info) curl straight to the S3 store, no proxy", "direct"),
            ("(info) presigning the URLs, %d threads" % args.concurrency, "presign")]
    for label, key in rows:
        s = med[key]
        print("  %-52s %8.2f %8.2f %8.1f %9.0f" % (label, s, min(res[key]), mb / s, count / s))
    print("  all runs (s): " + "; ".join(
        "%s %s" % (k, " ".join("%.2f" % v for v in res[k]))
        for k in ("limit", "plugin", "dicom", "stow", "direct", "presign")))
    b = {k: statistics.median([x[k] for x in res["breakdown"]])
         for k in ("pickup", "uploads", "metadata", "cycle", "put_mean")}
    print("  plugin steps (audit log, median): queued -> order created %.2f s, "
          "order -> last upload_ok %.2f s, last upload -> metadata %.2f s"
          % (b["pickup"], b["uploads"], b["metadata"]))
    # A thread asks for its next URL while its current PUT runs, so url_issued -> upload_ok
    # spans about two instances of that thread, not one PUT.
    print("  plugin per instance and thread: %.1f ms; url_issued -> upload_ok %.1f ms (the URL "
          "is asked ahead, during the thread's previous PUT)"
          % (b["cycle"] * 1000, b["put_mean"] * 1000))
    def cpu_ms(samples, key):
        return statistics.median([x[key] for x in samples]) * 1000 / count
    plugin_cpu = [x["cpu"] for x in res["breakdown"]]
    print("  CPU per instance (median): limit: simulator %.2f ms, curl %.2f ms;  plugin: "
          "simulator %.2f ms, Orthanc with the plugin %.2f ms" % (
              cpu_ms(res["limit_cpu"], "simulator"), cpu_ms(res["limit_cpu"], "curl"),
              cpu_ms(plugin_cpu, "simulator"), cpu_ms(plugin_cpu, "orthanc")))
    ratios = {"limit": med["plugin"] / med["limit"], "dicom": med["plugin"] / med["dicom"],
              "stow": med["plugin"] / med["stow"]}
    # The same ratio within each run (measured minutes apart at most): less exposed to the
    # load of other processes than a ratio of medians taken from different runs.
    per_run = {k: [p / o for p, o in zip(res["plugin"], res[k])] for k in ratios}
    targets = {"limit": ("<=", target, ratios["limit"] <= target),
               "dicom": ("<", 1, ratios["dicom"] < 1), "stow": ("<", 1, ratios["stow"] < 1)}
    for key, (op, value, ok) in targets.items():
        print("  ratio plugin/%s %.2f  (target %s %.2f) %s;  per run %s" % (
            key, ratios[key], op, value, verdict(ok),
            " ".join("%.2f" % x for x in per_run[key])))
    return {"median": med, "ratios": ratios, "per_run_ratios": per_run,
            "runs": {k: res[k] for k in keys},
            "breakdown": res["breakdown"], "bytes": res["bytes"],
            "connections": res["connections"], "limit_cpu": res["limit_cpu"]}


def _terminated(signum, frame):
    raise SystemExit(128 + signum)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="small sizes (the test suite's run)")
    parser.add_argument("--workload", choices=["a", "b", "all", "none"], default="all",
                        help="which timed workloads to run (none: only memory and callgrind)")
    parser.add_argument("--repeats", type=int, help="runs per workload (default 3, smoke 1)")
    parser.add_argument("--concurrency", type=int, default=4,
                        help="the plugin's Concurrency and curl's --parallel-max (default 4)")
    parser.add_argument("--study-workers", type=int, default=2, help="the plugin's StudyWorkers")
    parser.add_argument("--stable-age", type=int, default=3,
                        help="Orthanc's StableAge (not part of the plugin's time)")
    parser.add_argument("--plugin", default=harness.DEFAULT_PLUGIN)
    parser.add_argument("--bench-binary", help="UploadPathBench to run under callgrind")
    parser.add_argument("--skip-rss", action="store_true")
    parser.add_argument("--skip-callgrind", action="store_true")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)
    args.plugin = os.path.abspath(args.plugin)  # Orthanc resolves it from its own folder
    # SIGTERM (a test's time bound) unwinds like an exception, so every server is stopped.
    signal.signal(signal.SIGTERM, _terminated)
    repeats = args.repeats or (1 if args.smoke else 3)
    if repeats < 1 or args.concurrency < 1 or args.study_workers < 1:
        parser.error("--repeats, --concurrency and --study-workers must be at least 1")
    workloads = SMOKE_WORKLOADS if args.smoke else FULL_WORKLOADS
    names = {"all": ["a", "b"], "none": []}.get(args.workload, [args.workload])

    for path, what in ((args.plugin, "the plugin (build it first)"),
                       (DICOMWEB_PLUGIN, "Debian's orthanc-dicomweb"),
                       (harness.ORTHANC_BINARY, "Orthanc")):
        if not os.path.exists(path):
            print("benchmark: missing %s: %s" % (what, path), file=sys.stderr)
            return 2
    for tool in ("curl", "storescu") + (() if args.skip_callgrind else ("valgrind",)):
        if not shutil.which(tool):
            print("benchmark: %s is not installed" % tool, file=sys.stderr)
            return 2
    # The 2 GB study lives at once in the generated files (briefly), Orthanc's storage and the
    # simulator's store.
    rss_bytes = 0 if args.skip_rss else (lambda c, k: c * k * 1024)(
        *(SMOKE_RSS if args.smoke else FULL_RSS))
    needed = 3 * rss_bytes + 2 * 1024 * MB
    free = shutil.disk_usage(tempfile.gettempdir()).free
    if free < needed:
        print("benchmark: %.1f GB free in %s, %.1f GB needed" % (
            free / 1024 / MB, tempfile.gettempdir(), needed / 1024 / MB), file=sys.stderr)
        return 2

    print("Orthanc Cloud Ingest benchmark (%s) on %s, %d CPUs, load average %s" % (
        "smoke" if args.smoke else "full", platform.node(), os.cpu_count(),
        " ".join("%.2f" % x for x in os.getloadavg())))
    print("plugin: %s" % args.plugin)
    report = {"mode": "smoke" if args.smoke else "full", "concurrency": args.concurrency,
              "study_workers": args.study_workers, "workloads": {}}
    workdir = tempfile.mkdtemp(prefix="cloud-bench-")
    failed = False
    try:
        with Bench(args) as bench:
            # Untimed: the first token, order, PUT and association of each server (and
            # node's JIT) would otherwise land in the first measurement.
            run_workload(bench, "warm-up", 8, 64, 1, workdir)
            for name in names:
                count, size_kb, target = workloads[name]
                res = run_workload(bench, name, count, size_kb, repeats, workdir)
                report["workloads"][name] = print_workload(name, count, size_kb, target, res,
                                                           args)
                sys.stdout.flush()
            if not args.skip_rss:
                count, size_kb = SMOKE_RSS if args.smoke else FULL_RSS
                rss = measure_rss(bench, workdir, count, size_kb)
                report["rss"] = rss
                print()
                print("memory: a fresh Orthanc process sends %d x %d KB (%.2f GB) through the "
                      "plugin" % (count, size_kb, rss["bytes"] / 1024 / MB))
                for variant, label in (("default", "Orthanc's default storage cache (128 MB)"),
                                       ("nocache", "MaximumStorageCacheSize 0"),
                                       ("zip", "Zip mode, default cache")):
                    v = rss[variant]
                    print("  %-42s RSS %.1f -> peak %.1f MB in %.1f s (%d samples)" % (
                        label + ":", v["baseline"] / MB, v["peak"] / MB, v["seconds"],
                        v["samples"]))
                    print("  peak RSS growth %s %.1f MB  (target <= %d MB) %s" % (
                        variant, v["growth"] / MB, RSS_TARGET_MB,
                        verdict(v["growth"] <= RSS_TARGET_MB * MB)))
        if not args.skip_callgrind:
            cg = measure_callgrind(args, workdir, SMOKE_CALLGRIND if args.smoke
                                   else FULL_CALLGRIND)
            report["callgrind"] = cg
            print()
            print("callgrind: UploadPathBench (%s), %d B instances, Concurrency 1" % (
                cg["binary"], CALLGRIND_SIZE))
            print("  Ir %d instances %d, %d instances %d" % (cg["n1"], cg["ir1"], cg["n2"],
                                                             cg["ir2"]))
            print("  instructions per instance %.0f" % cg["per_instance"])
    except (BenchmarkFailure, harness.WaitAborted, TimeoutError, RuntimeError,
            harness.HttpError) as e:
        print("benchmark FAILED: %s" % e, file=sys.stderr)
        failed = True
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print()
    print("load average at the end: %s" % " ".join("%.2f" % x for x in os.getloadavg()))
    if args.json:
        report["failed"] = failed
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2, default=str)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
