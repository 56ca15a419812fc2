"""Stopping Orthanc does not wait for an upload in flight: a ZIP on a link so slow that its
PUT would take minutes is aborted, Orthanc exits within seconds of SIGTERM, and after a
restart the study is sent complete, the interrupted attempt not counted as a failure."""

import os
import signal
import subprocess
import time
import unittest

import cloudtest
import harness

RATE = 20 * 1024  # bytes per second the store reads the ZIP at
# Seconds from SIGTERM to exit with the PUT in flight: at most this, or Orthanc's own stop
# (about 2.5 s here, measured first) plus PLUGIN_SHARE on a slower machine. The plugin used
# to wait for the whole PUT: minutes.
STOP_BOUND = 5.0
PLUGIN_SHARE = 2.5


def sigterm_and_time(orthanc):
    """SIGTERM by PID; seconds until the process ended (SIGKILL after 60 s)."""
    os.kill(orthanc.pid, signal.SIGTERM)
    started = time.monotonic()
    try:
        orthanc.process.wait(60)
    except subprocess.TimeoutExpired:
        orthanc.kill9()
    return time.monotonic() - started


class ShutdownTest(unittest.TestCase):
    def test_sigterm_aborts_a_slow_zip_upload_and_the_study_is_sent_after_restart(self):
        tmp = cloudtest.tmpdir(self)
        sim = harness.Simulator()
        sim.start()
        self.addCleanup(sim.close)
        orthanc = harness.Orthanc(cloud_ingest=cloudtest.ingest_section(sim, UploadMode="Zip"))
        orthanc.start()
        self.addCleanup(orthanc.close)
        idle_stop = sigterm_and_time(orthanc)  # nothing queued yet
        orthanc.restart()

        # About 12 MB: even with a few MB taken by the sockets' buffers, the rest needs
        # several minutes at RATE.
        sim.faults({"endpoint": "put", "count": 1, "rate_bytes_per_s": RATE})
        study = cloudtest.generate(tmp, series=2, instances=10, size_kb=600)
        uid = study["study_uid"]
        zip_size = sum(os.path.getsize(path) for path, _ in study["instances"])
        self.assertGreater(zip_size / RATE, 300, "the throttled upload must take minutes")
        harness.storescu(orthanc.dicom_port, os.path.join(tmp, "study"))

        with cloudtest.explained(orthanc, sim, [uid]):
            cloudtest.wait_for_event(sim, cloudtest.fault_hit("put"), timeout=90,
                                     message="the throttled PUT under way")
            study_id = cloudtest.orthanc_study_id(orthanc, uid)
            self.assertEqual("sending", cloudtest.plugin_entry(orthanc, study_id)["state"])

            elapsed = sigterm_and_time(orthanc)
            self.assertLess(elapsed, max(STOP_BOUND, idle_stop + PLUGIN_SHARE),
                            "Orthanc took %.1f s to stop with a PUT in flight (%.1f s without)"
                            % (elapsed, idle_stop))
            self.assertEqual(0, orthanc.process.returncode)
            self.assertEqual([], [e for e in sim.events() if e["type"] == "upload_ok"],
                             "the PUT finished before the stop: nothing was cut short")

            sim.delete("/_sim/faults")
            orthanc.restart()
            entry = cloudtest.wait_until_sent(orthanc, uid, timeout=120)
            self.assertEqual(20, entry["instances_sent"])
            cloud = cloudtest.assert_complete_in_one_batch(self, orthanc, sim, uid, 20)
            self.assertEqual([], cloud["rejected"])

            # The interrupted attempt went back to the queue without counting as a failure.
            entry = cloudtest.plugin_entry(orthanc, study_id)
            events = [(h["event"], h.get("detail", "")) for h in entry["history"]]
            self.assertIn(("retry", "interrupted by Orthanc's shutdown"), events, events)
            self.assertNotIn("failed", [e for e, _ in events], events)
            self.assertEqual(0, orthanc.get("/cloud-ingest/status")["totals"]["failures"])
            audit = [e["event"] for e in orthanc.audit_records()
                     if e.get("orthanc_study_id") == study_id]
            self.assertEqual(1, audit.count("upload_ok"), audit)
            self.assertNotIn("upload_failed", audit)
            self.assertNotIn("study_failed", audit)
            self.assertEqual(1, audit.count("order_created"), audit)
            self.assertNotIn("X-Amz-", orthanc.log_text(),
                             "a presigned URL's query string was logged")


if __name__ == "__main__":
    unittest.main()
