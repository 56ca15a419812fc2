"""The benchmark (Resources/benchmark.py) in its smoke mode, so it cannot rot: it must run
end to end (simulator, plugin, peers, memory sampling, callgrind) and report every figure.
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

BENCHMARK = os.path.join(harness.REPO_ROOT, "Resources", "benchmark.py")
TIME_BOUND = 600  # seconds; a smoke run takes about 1.5 minutes here


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

        # One table per workload, each with the three ratios as positive finite numbers.
        for name in ("a", "b"):
            section = re.search(r"^workload %s: .*?(?=^workload |^memory:|\Z)" % name, out,
                                re.MULTILINE | re.DOTALL)
            self.assertIsNotNone(section, "no table for workload %s:\n%s" % (name, out))
            for peer in ("limit", "dicom", "stow"):
                match = re.search(r"^  ratio plugin/%s ([0-9.]+) " % peer, section.group(0),
                                  re.MULTILINE)
                self.assertIsNotNone(match, "no plugin/%s ratio for workload %s" % (peer, name))
                ratio = float(match.group(1))
                self.assertTrue(math.isfinite(ratio) and ratio > 0, ratio)
            ratios = report["workloads"][name]["ratios"]
            self.assertEqual({"limit", "dicom", "stow"}, set(ratios))
            medians = report["workloads"][name]["median"]
            for key in ("limit", "plugin", "dicom", "stow"):
                self.assertGreater(medians[key], 0, key)
            # The limit is measured over kept-alive connections: curl opened at most
            # --parallel-max of them for all the PUTs.
            self.assertLessEqual(max(report["workloads"][name]["connections"]),
                                 report["concurrency"])

        self.assertRegex(out, r"peak RSS growth default [0-9.]+ MB")
        self.assertRegex(out, r"peak RSS growth nocache [0-9.]+ MB")
        self.assertRegex(out, r"peak RSS growth zip [0-9.]+ MB")
        for variant in ("default", "nocache", "zip"):
            rss = report["rss"][variant]
            self.assertGreater(rss["samples"], 0)
            self.assertGreaterEqual(rss["peak"], rss["baseline"])

        match = re.search(r"^  instructions per instance ([0-9]+)$", out, re.MULTILINE)
        self.assertIsNotNone(match, out)
        self.assertGreater(int(match.group(1)), 1000)  # hashing 10 KB twice alone costs more
        self.assertFalse(report["failed"])


if __name__ == "__main__":
    unittest.main()
