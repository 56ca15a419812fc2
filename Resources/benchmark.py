#!/usr/bin/python3
"""Performance benchmark of the plugin's send path, against the link's limit and two peers.

One run on this machine, with the project's own tools only (Orthanc, the plugin, the cloud
simulator, DCMTK, curl, valgrind, Debian's orthanc-dicomweb), for each network profile:
loopback, and WAN profiles made by Resources/wan_relay.py (wan20: 20 ms RTT, 1000 Mbit/s;
wan80: 80 ms, 100 Mbit/s) in front of the simulator and of the peer (Resources/benchmark_wan.py).

  limit   the study's files PUT by `curl --parallel` (keep-alive) to presigned URLs issued by
          the simulator for this run (presigning not timed), through the same relay as the
          plugin, at the concurrency of the plugin's Instances row.
  plugin  Instances, Zip and Auto (Concurrency "auto"): a send of a study stored in Orthanc,
          from its "queued" history record to the last instance the store accepted (the
          simulator's receive time), both clocks of this machine, millisecond precision.
  peers   what a user would otherwise script: Orthanc's own C-STORE of the study to a second
          Orthanc (/modalities/{m}/store) and its DICOMweb STOW-RS client
          (/dicom-web/servers/{name}/stow), both synchronous, timed around the REST call.
  bound   on a WAN profile: bytes / bandwidth + the round trips a send cannot avoid.

The store is the simulator's fast store by default (--store fast: it answers the PUTs itself,
so it is not the bottleneck); --store strict proxies them to its S3 store (s3rver) as the tests do.

Workloads (full run): (a) 500 instances of about 512 KB, (b) 2,000 instances of about 10 KB;
each measured --repeats times (WAN profiles: --wan-repeats) on fresh studies, the median
reported. Then Orthanc's peak RSS growth while the plugin sends 2 GB (4,000 x 512 KB), and
500 MB on wan80 with Concurrency "auto", the cluster line (Resources/benchmark_cluster.py: two
nodes on one PostgreSQL against one, and the PostgreSQL store's overhead per study against
SQLite), and the instructions per instance of the unit-level upload path
(UnitTests/Bench/UploadPathBench under callgrind). The done-when targets are printed with
PASS or missed; the full run writes Resources/BenchmarkResults/<date>.md.

    /usr/bin/python3 Resources/benchmark.py            # full run (about 30 minutes)
    /usr/bin/python3 Resources/benchmark.py --smoke    # small sizes, used by the test suite
    /usr/bin/python3 Resources/benchmark.py --profile wan80 --workload b --skip-rss

The plugin is $CLOUD_INGEST_PLUGIN or build/libOrthancCloudIngest.so. Exit status: 0 unless
something failed functionally (an upload refused, an instance missing or different, a server
that did not start). Timings never change the exit status.
"""

import argparse
import contextlib
import datetime
import io
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.join(REPO_ROOT, "UnitTests", "Integration"))
sys.path.insert(0, os.path.join(REPO_ROOT, "Resources"))

import benchmark_cluster  # noqa: E402  (after the path insert)
import benchmark_wan  # noqa: E402
import cloudtest  # noqa: E402
import gen_study  # noqa: E402
import harness  # noqa: E402
from benchmark_common import (DICOMWEB_PLUGIN, MB, BenchmarkFailure,  # noqa: E402
                              generate, latest_batch_by_order, log, parse_iso, settle, verdict)

# name: (instances, size in KiB)
FULL_WORKLOADS = {"a": (500, 512), "b": (2000, 10)}
SMOKE_WORKLOADS = {"a": (16, 512), "b": (60, 10)}
# The smoke's WAN profile: one study of many small instances, sent in Auto: enough of them
# that per-instance round trips cost the plugin's Zip threshold (about 1 s at 40 ms).
SMOKE_WAN_WORKLOADS = {"b": (480, 10)}
FULL_RSS = (4000, 512)  # 2 GiB
SMOKE_RSS = (40, 512)
# Concurrency "auto" at its cap on wan80 (a smaller study: 100 Mbit/s is slow).
FULL_RSS_AUTO = (1000, 512)
SMOKE_RSS_AUTO = (40, 512)
RSS_TARGET_MB = 64
# Large multiframe instances, sent with Concurrency 8: (instances, MB each, frames each).
FULL_LARGE = (24, 32, 32)
SMOKE_LARGE = (6, 4, 4)
LARGE_CONCURRENCY = 8
LARGE_MAX_MEMORY_MB = 64
FULL_CALLGRIND = (100, 500)  # instance counts whose difference gives Ir per instance
SMOKE_CALLGRIND = (10, 30)
CALLGRIND_SIZE = 10240
RESULTS_DIR = os.path.join(REPO_ROOT, "Resources", "BenchmarkResults")


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


def measure_rss_large(bench, workdir, count, size_mb, frames):
    """Peak RSS growth while the plugin sends large multiframe instances, Concurrency 8.

    Twice: with MaxMemory 64 (MB), and with MaxMemory so high that it never binds, which is
    what the plugin held before the budget existed (Concurrency x StudyWorkers whole
    instances, each read through a second buffer).
    """
    study_dir = os.path.join(workdir, "large")
    started = time.monotonic()
    study = gen_study.generate_study(study_dir, series=1, instances=count, size_kb=size_mb * 1024,
                                     frames=frames, patient_name="Bench^LARGE")
    log("generated large: %d x %d MB (%d frames) in %.1f s" % (
        count, size_mb, frames, time.monotonic() - started))
    bytes_total = sum(os.path.getsize(p) for p, _ in study["instances"])
    section = cloudtest.ingest_section(bench.sim, Concurrency=LARGE_CONCURRENCY,
                                       StudyWorkers=bench.args.study_workers, AutoSend=False,
                                       Timeout=120)
    results = {"bytes": bytes_total, "count": count, "size_mb": size_mb, "frames": frames}
    with harness.Orthanc(cloud_ingest=section, plugins=[bench.args.plugin],
                         stable_age=bench.args.stable_age) as orthanc:
        harness.storescu(orthanc.dicom_port, [p for p, _ in study["instances"]], timeout=3600)
        shutil.rmtree(study_dir, ignore_errors=True)
        study_id = cloudtest.orthanc_study_id(orthanc, study["study_uid"])
        for variant, max_memory in (("bounded", LARGE_MAX_MEMORY_MB), ("unbounded", 1 << 20)):
            orthanc.restart({"CloudIngest": dict(section, MaxMemory=max_memory)})
            results[variant] = send_and_sample(orthanc, bench.sim, study_id,
                                               study["study_uid"], count)
            results[variant]["max_memory_mb"] = max_memory
            log("rss large %s: %s" % (variant, results[variant]))
    return results


def measure_rss_auto(bench, workdir, count, size_kb):
    """Peak RSS growth of a fresh Orthanc process sending count x size_kb over the bench's WAN
    profile with Concurrency "auto" (it grows with the round-trip time, up to MaxConcurrency),
    in Instances mode: the most connections, so the most instances in memory at once. A plugin
    without "auto" gets Concurrency = MaxConcurrency, the same cap."""
    study = generate(os.path.join(workdir, "rss-auto"), "study", count, size_kb)
    bytes_total = sum(os.path.getsize(p) for p, _ in study["instances"])
    if bench.supports_auto:
        section = bench.section("auto", UploadMode="Instances")
        config = "Instances, Concurrency auto (MaxConcurrency %d)" % bench.args.max_concurrency
    else:
        section = bench.section("fixed", Concurrency=bench.args.max_concurrency)
        config = "Instances, Concurrency %d (no auto in this build)" % bench.args.max_concurrency
    with harness.Orthanc(cloud_ingest=section, plugins=[bench.args.plugin],
                         stable_age=bench.args.stable_age) as orthanc:
        harness.storescu(orthanc.dicom_port, [p for p, _ in study["instances"]], timeout=3600)
        shutil.rmtree(os.path.join(workdir, "rss-auto"), ignore_errors=True)
        study_id = cloudtest.orthanc_study_id(orthanc, study["study_uid"])
        orthanc.restart()
        result = send_and_sample(orthanc, bench.sim, study_id, study["study_uid"], count)
    result.update(bytes=bytes_total, count=count, config=config)
    log("rss auto-cap: %s" % result)
    return result


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
class Tee(io.TextIOBase):
    """stdout, also kept for the results file."""

    def __init__(self, stream):
        self.stream, self.kept = stream, io.StringIO()

    def write(self, text):
        self.kept.write(text)
        return self.stream.write(text)

    def flush(self):
        self.stream.flush()


def machine():
    return {"host": platform.node(), "nproc": os.cpu_count(),
            "load": [round(x, 2) for x in os.getloadavg()],
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


def git_commit():
    run = subprocess.run(["git", "-C", REPO_ROOT, "log", "-1", "--format=%h %s"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    return run.stdout.decode("utf-8", "replace").strip()[:100]


def default_results_path():
    day = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
    path = os.path.join(RESULTS_DIR, day + ".md")
    if os.path.exists(path):
        path = os.path.join(RESULTS_DIR, datetime.datetime.now(datetime.timezone.utc).strftime(
            "%Y-%m-%d-%H%M") + ".md")
    return path


def write_results(path, report, printed, argv):
    """The run's own file: date, machine, commit, command, the targets, and the printed report."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    m = report["machine"]
    lines = ["# Benchmark results of %s" % m["date"], "",
             "Machine: `%s`, %d CPUs, load average %s at the start, %s at the end. Commit: %s." % (
                 m["host"], m["nproc"], " ".join("%.2f" % x for x in m["load"]),
                 " ".join("%.2f" % x for x in report.get("load_end", [])), report["commit"]),
             "",
             "Command: `/usr/bin/python3 Resources/benchmark.py %s` (store: %s)." % (
                 " ".join(argv), report["store"]),
             "", "Outcome: %s." % ("FAILED (%s); the figures below are those measured before"
                                   % report["error"] if "error" in report else "completed"),
             "", "## Targets", "", "| target | measured | goal | verdict |", "|---|---:|---:|---|"]
    for label, value, op, goal, ok in report["targets"]:
        lines.append("| %s | %.2f | %s %.2f | %s |" % (label, value, op, goal, verdict(ok)))
    lines += ["", "## Report as printed", "", "```", printed.rstrip(), "```", ""]
    with open(path, "w") as f:
        f.write("\n".join(lines))


def _terminated(signum, frame):
    raise SystemExit(128 + signum)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="small sizes (the test suite's run)")
    parser.add_argument("--workload", choices=["a", "b", "all", "none"], default="all",
                        help="which timed workloads to run (none: only memory and callgrind)")
    parser.add_argument("--profile", choices=["loopback", "wan20", "wan80", "wan40", "all"],
                        default="all", help="network profile (all: loopback, wan20 and wan80; "
                        "the smoke runs loopback and wan40)")
    parser.add_argument("--store", choices=["fast", "strict"], default="fast",
                        help="the simulator's store: fast (default, for timing) or strict (s3rver)")
    parser.add_argument("--repeats", type=int, help="runs per workload on loopback "
                        "(default 3, smoke 1)")
    parser.add_argument("--wan-repeats", type=int, default=1,
                        help="runs per workload on a WAN profile (default 1)")
    parser.add_argument("--concurrency", type=int, default=4,
                        help="the plugin's Concurrency and curl's --parallel-max on loopback "
                        "(default 4)")
    parser.add_argument("--wan-concurrency", type=int, default=32,
                        help="the same on a WAN profile (default 32)")
    parser.add_argument("--max-concurrency", type=int, default=32,
                        help="MaxConcurrency of the Auto row (Concurrency \"auto\", default 32)")
    parser.add_argument("--study-workers", type=int, default=2, help="the plugin's StudyWorkers")
    parser.add_argument("--stable-age", type=int, default=3,
                        help="Orthanc's StableAge (not part of the plugin's time)")
    parser.add_argument("--plugin", default=harness.DEFAULT_PLUGIN)
    parser.add_argument("--bench-binary", help="UploadPathBench to run under callgrind")
    parser.add_argument("--skip-rss", action="store_true")
    parser.add_argument("--skip-large", action="store_true",
                        help="skip the RSS run with large multiframe instances (MaxMemory)")
    parser.add_argument("--skip-callgrind", action="store_true")
    parser.add_argument("--skip-cluster", action="store_true",
                        help="skip the cluster line (nodes on one PostgreSQL)")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--results", help="the results file (Markdown); default for a full run "
                        "Resources/BenchmarkResults/<date>.md, none for --smoke; '' for none")
    args = parser.parse_args(argv)
    args.plugin = os.path.abspath(args.plugin)  # Orthanc resolves it from its own folder
    # SIGTERM (a test's time bound) unwinds like an exception, so every server is stopped.
    signal.signal(signal.SIGTERM, _terminated)
    repeats = args.repeats or (1 if args.smoke else 3)
    if min(repeats, args.wan_repeats, args.concurrency, args.wan_concurrency,
           args.max_concurrency, args.study_workers) < 1:
        parser.error("--repeats, --wan-repeats, the concurrencies and --study-workers must be "
                     "at least 1")
    workloads = SMOKE_WORKLOADS if args.smoke else FULL_WORKLOADS
    names = {"all": ["a", "b"], "none": []}.get(args.workload, [args.workload])
    if args.profile == "all":
        profiles = benchmark_wan.SMOKE_PROFILES if args.smoke else benchmark_wan.FULL_PROFILES
    else:
        profiles = [args.profile]
    results_path = args.results
    if results_path is None and not args.smoke:
        results_path = default_results_path()

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

    tee = Tee(sys.stdout)
    sys.stdout = tee
    report = {"mode": "smoke" if args.smoke else "full", "concurrency": args.concurrency,
              "wan_concurrency": args.wan_concurrency, "max_concurrency": args.max_concurrency,
              "study_workers": args.study_workers, "store": args.store, "machine": machine(),
              "commit": git_commit(), "profiles": {}, "targets": []}
    print("Orthanc Cloud Ingest benchmark (%s) on %s, %d CPUs, load average %s, %s" % (
        report["mode"], platform.node(), os.cpu_count(),
        " ".join("%.2f" % x for x in os.getloadavg()), report["machine"]["date"]))
    print("plugin: %s; store: %s; commit %s" % (args.plugin, args.store, report["commit"]))
    workdir = tempfile.mkdtemp(prefix="cloud-bench-")
    failed = False
    try:
        for profile in profiles:
            wan = profile != "loopback"
            profile_names = names
            profile_workloads = workloads
            if args.smoke and wan:
                profile_workloads = SMOKE_WAN_WORKLOADS
                profile_names = [n for n in names if n in SMOKE_WAN_WORKLOADS]
            with benchmark_wan.WanBench(args, profile) as bench:
                log("profile %s" % bench.describe())
                section = report["profiles"].setdefault(profile, {"workloads": {}})
                if profile_names:
                    # Untimed: the first token, order, PUT and association of each server (and
                    # node's JIT) would otherwise land in the first measurement.
                    benchmark_wan.run_workload(bench, "warm-up", 8, 64, 1, workdir)
                for name in profile_names:
                    count, size_kb = profile_workloads[name]
                    res = benchmark_wan.run_workload(bench, name, count, size_kb,
                                                     args.wan_repeats if wan else repeats,
                                                     workdir)
                    section["workloads"][name] = benchmark_wan.report_workload(
                        bench, name, count, size_kb, res, report["targets"])
                    sys.stdout.flush()
                if wan and not args.skip_rss and profile in ("wan80", "wan40"):
                    count, size_kb = SMOKE_RSS_AUTO if args.smoke else FULL_RSS_AUTO
                    v = measure_rss_auto(bench, workdir, count, size_kb)
                    report["rss_auto"] = v
                    print()
                    print("memory, %s: a fresh Orthanc process sends %d x %d KB (%.0f MB), "
                          "%s" % (profile, count, size_kb, v["bytes"] / MB, v["config"]))
                    print("  RSS %.1f -> peak %.1f MB in %.1f s (%d samples)" % (
                        v["baseline"] / MB, v["peak"] / MB, v["seconds"], v["samples"]))
                    ok = v["growth"] <= RSS_TARGET_MB * MB
                    print("  peak RSS growth auto-cap %.1f MB  (target <= %d MB) %s" % (
                        v["growth"] / MB, RSS_TARGET_MB, verdict(ok)))
                    report["targets"].append(("peak RSS growth, %s, %s" % (
                        profile, v["config"]), v["growth"] / MB, "<=", RSS_TARGET_MB, ok))
                if profile != "loopback":
                    continue
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
                        ok = v["growth"] <= RSS_TARGET_MB * MB
                        print("  peak RSS growth %s %.1f MB  (target <= %d MB) %s" % (
                            variant, v["growth"] / MB, RSS_TARGET_MB, verdict(ok)))
                        report["targets"].append(("peak RSS growth, loopback, %s" % label,
                                                  v["growth"] / MB, "<=", RSS_TARGET_MB, ok))
                if not args.skip_large:
                    count, size_mb, frames = SMOKE_LARGE if args.smoke else FULL_LARGE
                    large = measure_rss_large(bench, workdir, count, size_mb, frames)
                    report["rss_large"] = large
                    print()
                    print("memory, large instances: %d x %d MB multiframe (%d frames), Concurrency "
                          "%d, StudyWorkers %d" % (count, size_mb, frames, LARGE_CONCURRENCY,
                                                   args.study_workers))
                    for variant in ("bounded", "unbounded"):
                        v = large[variant]
                        print("  MaxMemory %-8d RSS %.1f -> peak %.1f MB in %.1f s (%d samples)" % (
                            v["max_memory_mb"], v["baseline"] / MB, v["peak"] / MB, v["seconds"],
                            v["samples"]))
                        print("  peak RSS growth large-%s %.1f MB" % (variant, v["growth"] / MB))
                    bounded, unbounded = large["bounded"]["growth"], large["unbounded"]["growth"]
                    # The budget covers the instances; Orthanc's own buffers and curl's add a little.
                    print("  ratio bounded/unbounded %.2f; bounded growth <= 2 x MaxMemory (%d MB) %s"
                          % (bounded / max(unbounded, 1), 2 * LARGE_MAX_MEMORY_MB,
                             verdict(bounded <= 2 * LARGE_MAX_MEMORY_MB * MB)))
        if not args.skip_cluster:
            cluster = benchmark_cluster.measure_cluster(args, workdir, args.smoke, log)
            report["cluster"] = cluster
            print()
            print("cluster: Orthanc nodes on one PostgreSQL 15 (orthanc-postgresql index), "
                  "Concurrency %d, StudyWorkers %d per node" % (args.concurrency,
                                                                args.study_workers))
            for key, label in (("sqlite", "one node, SQLite queue"),
                               ("pg1", "one node, PostgreSQL queue"),
                               ("pg2", "two nodes, PostgreSQL queue, 2 x the studies")):
                r = cluster[key]
                print("  %-46s %3d studies, %5d instances in %6.2f s (%.0f instances/s)" % (
                    label + ":", r["studies"], r["instances"], r["seconds"],
                    r["instances_per_second"]))
            print("  throughput ratio two nodes / one node %.2f; PostgreSQL store overhead "
                  "per study %.1f ms (against SQLite)" % (cluster["throughput_ratio"],
                                                         cluster["store_overhead_ms_per_study"]))
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
        report["error"] = str(e)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print()
    if report["targets"]:
        print("targets:")
        for label, value, op, goal, ok in report["targets"]:
            print("  %-62s %7.2f  (%s %.2f) %s" % (label, value, op, goal, verdict(ok)))
    report["load_end"] = [round(x, 2) for x in os.getloadavg()]
    print("load average at the end: %s" % " ".join("%.2f" % x for x in os.getloadavg()))
    sys.stdout = tee.stream
    if args.json:
        report["failed"] = failed
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2, default=str)
    if results_path:
        write_results(results_path, report, tee.kept.getvalue(), argv)
        print("results written to %s" % results_path)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
