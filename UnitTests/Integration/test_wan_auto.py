"""Over a wide-area link (80 ms round trip, through Resources/wan_relay.py, the simulator's
presigned URLs pointing at the relay): the plugin measures the round trip, UploadMode "Auto"
sends a study of many small instances as one ZIP and a small study per instance, Concurrency
"auto" opens as many uploads as MaxConcurrency allows, and the decisions show in the study's
history, the preview and the status."""

import os
import sys
import unittest

import cloudtest
import harness

sys.path.insert(0, os.path.join(harness.REPO_ROOT, "Resources"))
import wan_relay  # noqa: E402  (after the path insert)

RTT_MS = 80


def plan_entries(orthanc, orthanc_id):
    study = orthanc.get("/cloud-ingest/studies/%s" % orthanc_id)
    return [h["detail"] for h in study["history"] if h["event"] == "upload-plan"]


def zip_batches(cloud):
    return [b for b in cloud["batches"] if "zip" in b.get("sources", [])]


class WanAutoTest(unittest.TestCase):
    def test_auto_mode_and_auto_concurrency_follow_the_measured_round_trip(self):
        tmp = cloudtest.tmpdir(self)
        sim_port = harness.free_port()
        with wan_relay.WanRelay((harness.LOOPBACK, sim_port), rtt_ms=RTT_MS, mbit=200) as relay, \
                harness.Simulator(port=sim_port,
                                  public_url="http://127.0.0.1:%d" % relay.port) as sim, \
                harness.Orthanc(cloud_ingest=cloudtest.ingest_section(
                    sim, UploadMode="Auto", Concurrency="auto", MaxConcurrency=8)) as orthanc:
            self.assertIn(":%d" % relay.port, sim.url, "the plugin reaches the API via the relay")
            status = orthanc.get("/cloud-ingest/status")
            self.assertEqual("auto", status["concurrency"])
            self.assertIsNone(status["round_trip_ms"])

            # 100 instances, 8 uploads at a time: 13 waits of at least 80 ms, over 1 s.
            many = cloudtest.generate(tmp, "many", series=1, instances=100, size_kb=2)
            harness.storescu(orthanc.dicom_port, os.path.join(tmp, "many"))
            entry = cloudtest.wait_until_sent(orthanc, many["study_uid"], timeout=120)
            self.assertEqual(100, entry["instances_sent"])
            cloud = cloudtest.assert_complete_in_one_batch(self, orthanc, sim,
                                                           many["study_uid"], 100)
            plans = plan_entries(orthanc, entry["orthanc_id"])
            self.assertEqual(1, len(plans), plans)
            self.assertEqual(1, len(zip_batches(cloud)), plans)
            self.assertIn("UploadMode Auto: Zip, 100 instances / 8 uploads at a time x ", plans[0])
            self.assertIn("Concurrency auto: 8 uploads at a time", plans[0])

            status = orthanc.get("/cloud-ingest/status")
            self.assertGreaterEqual(status["round_trip_ms"], RTT_MS * 0.9)
            self.assertLess(status["round_trip_ms"], RTT_MS * 4)

            preview = orthanc.get("/cloud-ingest/studies/%s/preview" % entry["orthanc_id"])
            self.assertEqual("Zip", preview["mode"])
            self.assertEqual(8, preview["connections"])
            self.assertIn("UploadMode Auto: Zip", preview["mode_reason"])

            # Three instances cost one round trip per instance: sent one by one.
            few = cloudtest.generate(tmp, "few", series=1, instances=3, size_kb=20)
            harness.storescu(orthanc.dicom_port, os.path.join(tmp, "few"))
            entry = cloudtest.wait_until_sent(orthanc, few["study_uid"], timeout=120)
            cloud = cloudtest.assert_complete_in_one_batch(self, orthanc, sim,
                                                           few["study_uid"], 3)
            self.assertEqual([], zip_batches(cloud))
            plans = plan_entries(orthanc, entry["orthanc_id"])
            self.assertEqual(1, len(plans), plans)
            self.assertIn("UploadMode Auto: Instances, 3 instances", plans[0])


if __name__ == "__main__":
    unittest.main()
