"""Bad inputs get a clear message and lose nothing: a presigned URL that points
elsewhere, an audit log on a full disk, a store answering with a wrong ETag."""

import os
import unittest

import cloudtest
import harness


def entry_of(orthanc, study_uid):
    study_id = cloudtest.orthanc_study_id(orthanc, study_uid)
    return orthanc.get("/cloud-ingest/studies/" + study_id) if study_id else None


class BadInputsTest(unittest.TestCase):
    def test_presigned_url_to_a_host_not_allowed_is_refused(self):
        tmp = cloudtest.tmpdir(self)
        with harness.Simulator() as sim:
            section = cloudtest.ingest_section(sim, AllowedUploadHosts=["uploads.example.org"])
            with harness.Orthanc(cloud_ingest=section) as orthanc:
                study = cloudtest.generate(tmp, instances=2)
                harness.storescu(orthanc.dicom_port, os.path.join(tmp, "study"))
                entry = orthanc.wait_for(
                    lambda: (lambda e: e if e and e["state"] == "failed" else None)(
                        entry_of(orthanc, study["study_uid"])),
                    timeout=60, message="the study to fail")
                self.assertIn("AllowedUploadHosts", entry["last_error"])
                self.assertIn("127.0.0.1", entry["last_error"])
                self.assertNotIn("X-Amz", entry["last_error"])
                self.assertEqual(set(), sim.received_instances(study["study_uid"]))
                self.assertNotIn("X-Amz-Signature", orthanc.log_text())

                # Fixed configuration + a manual resend: it arrives.
                section["AllowedUploadHosts"] = ["127.0.0.1"]
                orthanc.restart({"CloudIngest": section})
                orthanc.post("/cloud-ingest/studies/%s/send" % entry["orthanc_id"], {})
                cloudtest.wait_until_sent(orthanc, study["study_uid"])
                # The restart's catch-up may also have queued the failed study: any
                # number of orders, but one complete batch.
                cloudtest.assert_complete_in_one_batch(self, orthanc, sim, study["study_uid"], 2,
                                                       orders=None)

    def test_audit_log_on_a_full_disk_keeps_the_study_queued(self):
        tmp = cloudtest.tmpdir(self)
        with harness.Simulator() as sim:
            section = cloudtest.ingest_section(sim, AuditLog="/dev/full", StudyRetryDelay=1)
            with harness.Orthanc(cloud_ingest=section) as orthanc:
                study = cloudtest.generate(tmp, instances=3)
                harness.storescu(orthanc.dicom_port, os.path.join(tmp, "study"))
                entry = orthanc.wait_for(
                    lambda: (lambda e: e if e and e["attempts"] >= 2 else None)(
                        entry_of(orthanc, study["study_uid"])),
                    timeout=60, message="two failed attempts")
                self.assertIn(entry["state"], ("queued", "sending"))
                self.assertIn("No space left on device", entry["last_error"])
                # Nothing counts as sent while it cannot be audited.
                self.assertEqual(0, orthanc.get("/cloud-ingest/status")["totals"]["studies_sent"])

                # Disk space back (a writable audit file): the queued study goes out.
                section["AuditLog"] = os.path.join(tmp, "audit.jsonl")
                orthanc.restart({"CloudIngest": section})
                cloudtest.wait_until_sent(orthanc, study["study_uid"], timeout=90)
                # The order created before the first audit failure is reused.
                cloudtest.assert_complete_in_one_batch(self, orthanc, sim, study["study_uid"], 3)

    def test_an_interrupted_put_is_retried_not_dropped(self):
        tmp = cloudtest.tmpdir(self)
        with harness.Simulator() as sim, harness.Orthanc(
                cloud_ingest=cloudtest.ingest_section(sim)) as orthanc:
            sim.faults({"endpoint": "put", "reset": True, "count": 3})
            study = cloudtest.generate(tmp, instances=4)
            harness.storescu(orthanc.dicom_port, os.path.join(tmp, "study"))
            cloudtest.wait_until_sent(orthanc, study["study_uid"])
            cloudtest.assert_complete_in_one_batch(self, orthanc, sim, study["study_uid"], 4)
            resets = [e for e in sim.events()
                      if e.get("type", e.get("event")) == "fault_injected" and e.get("reset")]
            self.assertEqual(3, len(resets), "the store should have dropped three PUTs")


if __name__ == "__main__":
    unittest.main()
