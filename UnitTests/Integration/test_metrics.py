"""The plugin's metrics in Orthanc's /tools/metrics-prometheus (prefix cloud_ingest_), against a
real Orthanc 1.10 with the plugin and the cloud simulator: after two studies are sent, and
after a study fails. Orthanc asks the plugin to refresh its metrics on each scrape."""

import math
import re
import unittest

import cloudtest
import harness

METRIC_LINE = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)\s+(\S+)(?:\s+(-?\d+))?$")


def scrape(orthanc):
    """{name: float} of every sample in /tools/metrics-prometheus; checks the text format."""
    status, headers, body = orthanc.request("GET", "/tools/metrics-prometheus")
    assert status == 200, (status, body)
    metrics = {}
    for line in body.decode("utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        match = METRIC_LINE.match(line)
        assert match, "not a Prometheus sample line: %r" % line
        metrics[match.group(1)] = float(match.group(2))
    return metrics, body


def stored_bytes(orthanc, study_id):
    """Number of instances and total bytes of the files Orthanc stored for a study."""
    instances = orthanc.get("/studies/%s/instances" % study_id)
    total = 0
    for instance in instances:
        status, _, body = orthanc.request("GET", "/instances/%s/file" % instance["ID"])
        assert status == 200
        total += len(body)
    return len(instances), total


class MetricsTest(cloudtest.SharedServersTestCase):
    """The tests run in name order: test_1 sees two sent studies, test_2 adds a failure."""

    orthanc_options = {"stable_age": 1, "extra": {"MetricsEnabled": True}}

    def assert_close(self, expected, actual, name):
        # Orthanc keeps metrics as 32-bit floats.
        self.assertTrue(math.isclose(expected, actual, rel_tol=1e-6, abs_tol=1e-9),
                        "%s: expected %r, got %r" % (name, expected, actual))

    def upload(self, name, **kwargs):
        study = cloudtest.generate(self.tmp, name, series=1, **kwargs)
        for path, _ in study["instances"]:
            self.orthanc.upload_instance(path)
        return study

    def test_1_two_studies_sent(self):
        before, _ = scrape(self.orthanc)
        self.assertEqual(0, before["cloud_ingest_studies_sent_total"])
        self.assertEqual(0, before["cloud_ingest_queue_sent"])
        self.assertEqual(-1, before["cloud_ingest_seconds_since_last_success"])

        first = self.upload("first", instances=3, size_kb=7, seed=1)
        second = self.upload("second", instances=5, size_kb=11, seed=2)
        counts, sizes = [], []
        for study in (first, second):
            entry = cloudtest.wait_until_sent(self.orthanc, study["study_uid"], timeout=60)
            count, size = stored_bytes(self.orthanc, entry["orthanc_id"])
            self.assertEqual(len(study["instances"]), count)
            counts.append(count)
            sizes.append(size)

        metrics, raw = scrape(self.orthanc)
        self.assertEqual(2, metrics["cloud_ingest_studies_sent_total"])
        self.assertEqual(8, sum(counts))
        self.assertEqual(sum(counts), metrics["cloud_ingest_instances_sent_total"])
        self.assert_close(sum(sizes), metrics["cloud_ingest_bytes_sent_total"],
                          "cloud_ingest_bytes_sent_total")
        self.assertEqual(2, metrics["cloud_ingest_queue_sent"])
        for state in ("queued", "sending", "failed", "cancelled"):
            self.assertEqual(0, metrics["cloud_ingest_queue_" + state], state)
        self.assertEqual(0, metrics["cloud_ingest_failures_total"])
        self.assertEqual(1, metrics["cloud_ingest_token_valid"])
        age = metrics["cloud_ingest_seconds_since_last_success"]
        self.assertGreaterEqual(age, 0)
        self.assertLess(age, 120)
        # The same numbers as the REST status.
        totals = self.orthanc.get("/cloud-ingest/status")["totals"]
        self.assertEqual(totals["bytes_sent"], sum(sizes))
        self.assertEqual(totals["instances_sent"], metrics["cloud_ingest_instances_sent_total"])
        self.assertFalse(self.sim.client_secret.encode() in raw, "the secret is in the metrics")

    def test_2_a_failed_study(self):
        before, _ = scrape(self.orthanc)
        # The service refuses the order with a 400: the study fails without retrying.
        self.sim.faults({"endpoint": "new-order", "status": 400, "count": 1})
        study = self.upload("refused", instances=2, size_kb=5, seed=3)

        def failed():
            study_id = cloudtest.orthanc_study_id(self.orthanc, study["study_uid"])
            if not study_id:
                return None
            status, _, body = self.orthanc.request("GET", "/cloud-ingest/studies/" + study_id)
            entry = harness.decode_body({"content-type": "application/json"}, body)
            return entry if status == 200 and entry["state"] == "failed" else None
        entry = self.orthanc.wait_for(failed, timeout=60, interval=0.3, message="a failed study")
        self.assertIn("400", entry["last_error"] or "")

        metrics, raw = scrape(self.orthanc)
        self.assertEqual(1, metrics["cloud_ingest_queue_failed"])
        self.assertGreaterEqual(metrics["cloud_ingest_failures_total"], 1)
        self.assertGreater(metrics["cloud_ingest_failures_total"],
                           before["cloud_ingest_failures_total"])
        # What was sent before is unchanged.
        for name in ("cloud_ingest_studies_sent_total", "cloud_ingest_instances_sent_total",
                     "cloud_ingest_bytes_sent_total", "cloud_ingest_queue_sent"):
            self.assertEqual(before[name], metrics[name], name)
        self.assertEqual(0, metrics["cloud_ingest_queue_queued"])
        self.assertEqual(0, metrics["cloud_ingest_queue_sending"])
        self.assertEqual(1, metrics["cloud_ingest_token_valid"])
        self.assertFalse(self.sim.client_secret.encode() in raw, "the secret is in the metrics")
        self.assertEqual(set(), self.sim.received_instances(study["study_uid"]))


if __name__ == "__main__":
    unittest.main()
