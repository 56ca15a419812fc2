"""UploadMode Zip: a study arrives as one accepted ZIP equal to what Orthanc
stored, and a ZIP interrupted by kill -9 leaves no temporary file and is sent again."""

import os
import time
import unittest

import cloudtest
import harness


def zip_batches(cloud):
    return [b for b in cloud["batches"] if "zip" in b.get("sources", [])]


class ZipModeTest(unittest.TestCase):
    def test_three_series_study_arrives_as_one_accepted_zip(self):
        tmp = cloudtest.tmpdir(self)
        with harness.Simulator() as sim, harness.Orthanc(
                cloud_ingest=cloudtest.ingest_section(sim, UploadMode="Zip")) as orthanc:
            study = cloudtest.generate(tmp, series=3, instances=5, size_kb=30)
            harness.storescu(orthanc.dicom_port, os.path.join(tmp, "study"))
            entry = cloudtest.wait_until_sent(orthanc, study["study_uid"])
            self.assertEqual(15, entry["instances_sent"])
            cloud = cloudtest.assert_complete_in_one_batch(self, orthanc, sim,
                                                           study["study_uid"], 15)
            self.assertEqual([], cloud["rejected"])
            self.assertEqual(1, len(zip_batches(cloud)))
            uploads = [e for e in orthanc.audit_records()
                       if e.get("orthanc_study_id") == entry["orthanc_id"]
                       and e["event"] == "upload_ok"]
            self.assertEqual(1, len(uploads))
            self.assertTrue(uploads[0]["url"].endswith(".zip"))
            self.assertEqual([], os.listdir(os.path.join(orthanc.index_dir, "cloud-ingest-tmp")))

    def test_manual_send_can_ask_for_a_zip(self):
        tmp = cloudtest.tmpdir(self)
        with harness.Simulator() as sim, harness.Orthanc(
                cloud_ingest=cloudtest.ingest_section(sim)) as orthanc:
            study = cloudtest.generate(tmp, series=1, instances=4)
            harness.storescu(orthanc.dicom_port, os.path.join(tmp, "study"))
            entry = cloudtest.wait_until_sent(orthanc, study["study_uid"])
            self.assertEqual([], zip_batches(sim.studies()[study["study_uid"]]))
            orthanc.post("/cloud-ingest/studies/%s/send" % entry["orthanc_id"], {"mode": "Zip"})
            orthanc.wait_for(lambda: zip_batches(sim.studies()[study["study_uid"]]), timeout=60,
                             message="a ZIP upload")
            cloud = sim.studies()[study["study_uid"]]
            self.assertEqual([], cloud["rejected"])
            self.assertEqual(4, len(zip_batches(cloud)[0]["instances"]))

    def test_zip_upload_on_a_slow_link_outlasts_the_timeout(self):
        # Timeout 1 s, and the ZIP's PUT takes about 3 s because the store reads it at
        # 300 KB/s: a moving upload is not cut off (it used to be, and was retried forever).
        tmp = cloudtest.tmpdir(self)
        with harness.Simulator() as sim, harness.Orthanc(
                cloud_ingest=cloudtest.ingest_section(sim, UploadMode="Zip",
                                                      Timeout=1)) as orthanc:
            sim.faults({"endpoint": "put", "count": 1, "rate_bytes_per_s": 300 * 1024})
            study = cloudtest.generate(tmp, series=2, instances=10, size_kb=50)
            harness.storescu(orthanc.dicom_port, os.path.join(tmp, "study"))
            entry = cloudtest.wait_until_sent(orthanc, study["study_uid"], timeout=90)
            self.assertEqual(20, entry["instances_sent"])
            cloud = cloudtest.assert_complete_in_one_batch(self, orthanc, sim,
                                                           study["study_uid"], 20)
            self.assertEqual(1, len(zip_batches(cloud)))
            events = sim.events()
            self.assertEqual(1, len([e for e in events if e["type"] == "fault_injected"]))
            self.assertEqual([], [e for e in events if e["type"] == "upload_failed"])
            puts = [e for e in events if e["type"] == "upload_ok"]
            self.assertEqual(1, len(puts), "one PUT, never cut off and repeated")
            self.assertGreater(puts[0]["bytes"], 900 * 1024)
            audit = [e for e in orthanc.audit_records()
                     if e.get("orthanc_study_id") == entry["orthanc_id"]]
            self.assertEqual(1, len([e for e in audit if e["event"] == "upload_ok"]))
            self.assertEqual([], [e for e in audit if e["event"] == "upload_failed"])

    def test_zip_interrupted_by_kill9_is_cleaned_and_sent_again(self):
        tmp = cloudtest.tmpdir(self)
        with harness.Simulator("--overwrite-window", "600") as sim, harness.Orthanc(
                cloud_ingest=cloudtest.ingest_section(sim, UploadMode="Zip")) as orthanc:
            temp_dir = os.path.join(orthanc.index_dir, "cloud-ingest-tmp")
            # The store is slow: the ZIP sits on disk while its PUT is under way.
            sim.faults({"endpoint": "put", "count": 1, "delay_ms": 20000})
            study = cloudtest.generate(tmp, series=2, instances=10, size_kb=50)
            harness.storescu(orthanc.dicom_port, os.path.join(tmp, "study"))
            orthanc.wait_for(lambda: os.path.isdir(temp_dir) and os.listdir(temp_dir),
                             timeout=60, message="a temporary ZIP")
            time.sleep(0.5)
            orthanc.kill9()
            self.assertTrue(os.listdir(temp_dir), "the crash should have left the ZIP behind")
            orthanc.restart()
            entry = cloudtest.wait_until_sent(orthanc, study["study_uid"], timeout=90)
            self.assertEqual(20, entry["instances_sent"])
            self.assertIn("temporary file(s) of a previous run", orthanc.log_text())
            self.assertEqual([], os.listdir(temp_dir))
            cloud = cloudtest.assert_complete_in_one_batch(self, orthanc, sim,
                                                           study["study_uid"], 20)
            self.assertEqual([], cloud["rejected"])


if __name__ == "__main__":
    unittest.main()
