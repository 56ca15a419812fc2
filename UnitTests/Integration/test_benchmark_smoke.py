"""The benchmark (Resources/benchmark.py) in its smoke mode, so it cannot rot: it must run
end to end (simulator, plugin, peers, memory sampling, callgrind, the WAN relay) and report
every figure.
Timings are printed, never asserted: this machine is shared and noisy."""

import json
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import unittest

import harness

sys.path.insert(0, os.path.join(harness.REPO_ROOT, "Resources"))
import benchmark_wan  # noqa: E402  (after the path insert)

BENCHMARK = os.path.join(harness.REPO_ROOT, "Resources", "benchmark.py")
TIME_BOUND = 600  # seconds; a smoke run takes about 3 minutes here


def run_bounded(command, timeout):
    """Run command; on timeout SIGTERM it (it stops its servers), then SIGKILL."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env=harness.loopback_env())
    try:
        out, err = process.communicate(timeout=timeout)
        return process.returncode, out.decode(), err.decode(), False
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGTERM)
        try:
            out, err = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            out, err = process.communicate()
        return process.returncode, out.decode(), err.decode(), True


class BenchmarkSmokeTest(unittest.TestCase):

    def test_smoke_run_reports_every_figure(self):
        with tempfile.TemporaryDirectory(prefix="bench-smoke-") as tmp:
            report_path = os.path.join(tmp, "report.json")
            started = time.monotonic()
            code, out, err, timed_out = run_bounded(
                ["/usr/bin/python3", BENCHMARK, "--smoke", "--json", report_path], TIME_BOUND)
            elapsed = time.monotonic() - started
            sys.stderr.write("benchmark --smoke: exit %s in %.0f s\n%s\n" % (code, elapsed, out))
            self.assertFalse(timed_out, "the smoke run took over %d s:\n%s"
                             % (TIME_BOUND, err[-3000:]))
            self.assertEqual(0, code, "the smoke run failed:\n%s\n%s" % (out, err[-3000:]))
            with open(report_path) as f:
                report = json.load(f)

        # One table per workload, each with the headline ratios as positive finite numbers.
        loopback = report["profiles"]["loopback"]["workloads"]
        for name in ("a", "b"):
            section = re.search(r"^workload %s: .*?(?=^workload |^\[|^memory|\Z)" % name, out,
                                re.MULTILINE | re.DOTALL)
            self.assertIsNotNone(section, "no table for workload %s:\n%s" % (name, out))
            for peer in ("limit", "dicom", "stow"):
                match = re.search(r"^  ratio plugin/%s ([0-9.]+) " % peer, section.group(0),
                                  re.MULTILINE)
                self.assertIsNotNone(match, "no plugin/%s ratio for workload %s" % (peer, name))
                ratio = float(match.group(1))
                self.assertTrue(math.isfinite(ratio) and ratio > 0, ratio)
            ratios = loopback[name]["ratios"]
            self.assertLessEqual({"instances/limit", "instances/dicom", "instances/stow",
                                  "zip/limit", "zip/dicom", "zip/stow"}, set(ratios))
            medians = loopback[name]["median"]
            for key in ("limit", "instances", "zip", "dicom", "stow"):
                self.assertGreater(medians[key], 0, key)
            # The limit is measured over kept-alive connections: curl opened at most
            # --parallel-max of them for all the PUTs.
            self.assertLessEqual(max(loopback[name]["connections"]), report["concurrency"])

        # The WAN profile: every row went through the relays, the bound is the link's.
        wan = report["profiles"]["wan40"]["workloads"]["b"]
        self.assertEqual({"name": "wan40", "rtt_ms": 40, "mbit": 100}, wan["profile"])
        for key in ("limit", "instances", "zip", "dicom", "stow", "bound"):
            self.assertGreater(wan["median"][key], 0, key)
        # Each exchange crosses 40 ms of round trip: a Zip send (order, URL, PUT, metadata;
        # the token may be cached) cannot beat four of them.
        self.assertGreaterEqual(wan["median"]["zip"], 4 * 0.040)
        self.assertLessEqual(max(wan["connections"]), report["wan_concurrency"])
        if benchmark_wan.plugin_supports_auto(harness.DEFAULT_PLUGIN):
            # 480 small instances over a 40 ms round trip: Auto chose Zip, and said why.
            self.assertEqual(["Zip"], wan["auto_sent_as"], out)
            self.assertTrue(all(wan["auto_mode_history"]), wan["auto_mode_history"])
            self.assertIn("Zip", json.dumps(wan["auto_mode_history"]))
        else:
            sys.stderr.write("this plugin build has no UploadMode Auto: the Auto row is skipped\n")
        self.assertRegex(out, r"peak RSS growth auto-cap [0-9.]+ MB")
        self.assertGreater(report["rss_auto"]["samples"], 0)

        self.assertRegex(out, r"peak RSS growth default [0-9.]+ MB")
        self.assertRegex(out, r"peak RSS growth nocache [0-9.]+ MB")
        self.assertRegex(out, r"peak RSS growth zip [0-9.]+ MB")
        for variant in ("default", "nocache", "zip"):
            rss = report["rss"][variant]
            self.assertGreater(rss["samples"], 0)
            self.assertGreaterEqual(rss["peak"], rss["baseline"])

        self.assertRegex(out, r"peak RSS growth large-bounded [0-9.]+ MB")
        self.assertRegex(out, r"peak RSS growth large-unbounded [0-9.]+ MB")
        for variant in ("bounded", "unbounded"):
            rss = report["rss_large"][variant]
            self.assertGreater(rss["samples"], 0)
            self.assertGreaterEqual(rss["peak"], rss["baseline"])

        # The cluster line: two nodes on one PostgreSQL against one, every study sent once.
        match = re.search(r"^  throughput ratio two nodes / one node ([0-9.]+); PostgreSQL "
                          r"store overhead per study (-?[0-9.]+) ms", out, re.MULTILINE)
        self.assertIsNotNone(match, out)
        self.assertGreater(float(match.group(1)), 0)
        cluster = report["cluster"]
        for key, nodes in (("sqlite", 1), ("pg1", 1), ("pg2", 2)):
            self.assertEqual(nodes, cluster[key]["nodes"])
            self.assertGreater(cluster[key]["seconds"], 0)
        self.assertEqual(2 * cluster["pg1"]["instances"], cluster["pg2"]["instances"])

        match = re.search(r"^  instructions per instance ([0-9]+)$", out, re.MULTILINE)
        self.assertIsNotNone(match, out)
        self.assertGreater(int(match.group(1)), 1000)  # hashing 10 KB twice alone costs more
        self.assertFalse(report["failed"])


if __name__ == "__main__":
    unittest.main()
