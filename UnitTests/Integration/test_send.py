"""Stable studies reach the cloud complete, byte-identical and in one batch:
real Orthanc 1.10 with the freshly built plugin, the simulator and its S3 store."""

import json
import os
import threading
import unittest

import cloudtest
import harness


class SendTest(cloudtest.SharedServersTestCase):
    """One simulator and one Orthanc for the whole class; each test uses its own studies."""

    ingest = {"OrderMetadata": {"site": {"Value": "site-7"},
                                "performing": "PerformingPhysicianName"}}
    orthanc_options = {"stable_age": 2}

    def test_storescu_study_arrives_complete_with_its_order_metadata(self):
        tmp = cloudtest.tmpdir(self)
        study = cloudtest.generate(tmp, series=2, instances=5, size_kb=20,
                                   patient_name="Doe^John", study_description="Chest CT")
        harness.storescu(self.orthanc.dicom_port, os.path.join(tmp, "study"))
        entry = cloudtest.wait_until_sent(self.orthanc, study["study_uid"])
        self.assertEqual(10, entry["instances_sent"])
        self.assertEqual(10, entry["instances_total"])
        cloud = cloudtest.assert_complete_in_one_batch(self, self.orthanc, self.sim,
                                                       study["study_uid"], 10)
        self.assertEqual(entry["order_id"], cloud["orders"][0])

        # The order metadata equals the study's stored tags.
        tags = self.orthanc.get("/studies/%s" % entry["orthanc_id"])
        main, patient = tags["MainDicomTags"], tags["PatientMainDicomTags"]
        api = cloud["api_metadata"]
        self.assertEqual(study["study_uid"], api["study_instance_uid"])
        self.assertEqual(patient["PatientName"], api["patient_name"])
        self.assertEqual("Doe^John", api["patient_name"])
        self.assertEqual(patient["PatientID"], api["patient_id"])
        self.assertEqual(main["StudyDate"], api["study_date"])
        self.assertEqual(main["AccessionNumber"], api["accession_number"])
        self.assertEqual("Chest CT", api["study_description"])
        self.assertEqual(["CT"], api["modalities"])
        self.assertEqual("2", api["number_of_series"])
        self.assertEqual("10", api["number_of_instances"])
        self.assertEqual(entry["orthanc_id"], api["source"]["orthanc_study_id"])
        self.assertEqual("STORESCU", api["source"]["calling_aet"])
        self.assertEqual("site-7", api["site"])
        self.assertEqual("complete", api["upload_status"])

    def test_rest_uploaded_study_arrives_complete(self):
        tmp = cloudtest.tmpdir(self)
        study = cloudtest.generate(tmp, series=1, instances=6, size_kb=8)
        for path, _ in study["instances"]:
            self.orthanc.upload_instance(path)
        entry = cloudtest.wait_until_sent(self.orthanc, study["study_uid"])
        cloud = cloudtest.assert_complete_in_one_batch(self, self.orthanc, self.sim,
                                                       study["study_uid"], 6)
        self.assertNotIn("calling_aet", cloud["api_metadata"]["source"])
        self.assertEqual(entry["orthanc_id"], cloud["api_metadata"]["source"]["orthanc_study_id"])

    def test_three_series_of_fifty_instances(self):
        tmp = cloudtest.tmpdir(self)
        study = cloudtest.generate(tmp, series=3, instances=50, size_kb=12)
        harness.storescu(self.orthanc.dicom_port, os.path.join(tmp, "study"))
        cloudtest.wait_until_sent(self.orthanc, study["study_uid"], timeout=180)
        cloud = cloudtest.assert_complete_in_one_batch(self, self.orthanc, self.sim,
                                                       study["study_uid"], 150)
        self.assertEqual("3", cloud["api_metadata"]["number_of_series"])

    def test_two_studies_arriving_at_the_same_time(self):
        tmp = cloudtest.tmpdir(self)
        first = cloudtest.generate(tmp, "a", series=2, instances=10, size_kb=10, patient_name="A^A")
        second = cloudtest.generate(tmp, "b", series=2, instances=10, size_kb=10, patient_name="B^B")
        errors = []

        def send(folder):
            try:
                harness.storescu(self.orthanc.dicom_port, os.path.join(tmp, folder))
            except Exception as e:  # reported below, in the test's thread
                errors.append(e)
        threads = [threading.Thread(target=send, args=(f,)) for f in ("a", "b")]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        self.assertEqual([], errors)
        for study, name in ((first, "A^A"), (second, "B^B")):
            cloudtest.wait_until_sent(self.orthanc, study["study_uid"])
            cloud = cloudtest.assert_complete_in_one_batch(self, self.orthanc, self.sim,
                                                           study["study_uid"], 20)
            self.assertEqual(name, cloud["api_metadata"]["patient_name"])

    def test_non_ascii_patient_name_is_sent_as_utf8(self):
        tmp = cloudtest.tmpdir(self)
        name = "Müller^Jürgen=山田^太郎"
        study = cloudtest.generate(tmp, series=1, instances=3, patient_name=name,
                                   charset="ISO_IR 192")
        harness.storescu(self.orthanc.dicom_port, os.path.join(tmp, "study"))
        cloudtest.wait_until_sent(self.orthanc, study["study_uid"])
        cloud = cloudtest.assert_complete_in_one_batch(self, self.orthanc, self.sim,
                                                       study["study_uid"], 3)
        self.assertEqual(name, cloud["api_metadata"]["patient_name"])

    def test_audit_log_holds_every_event_and_no_secret(self):
        tmp = cloudtest.tmpdir(self)
        study = cloudtest.generate(tmp, series=1, instances=4, size_kb=5)
        harness.storescu(self.orthanc.dicom_port, os.path.join(tmp, "study"))
        entry = cloudtest.wait_until_sent(self.orthanc, study["study_uid"])
        records = [r for r in self.orthanc.audit_records()
                   if r.get("orthanc_study_id") == entry["orthanc_id"]]
        events = [r["event"] for r in records]
        self.assertEqual(1, events.count("order_created"))
        self.assertEqual(4, events.count("url_issued"))
        self.assertEqual(4, events.count("upload_ok"))
        self.assertEqual(1, events.count("metadata_added"))
        self.assertEqual(1, events.count("study_sent"))
        self.assertLess(events.index("order_created"), events.index("url_issued"))
        self.assertLess(max(i for i, e in enumerate(events) if e == "upload_ok"),
                        events.index("metadata_added"))
        sops = {sop for _, sop in study["instances"]}
        for r in records:
            self.assertIn("time", r)
            self.assertEqual(entry["order_id"], r["order_id"])
            if r["event"] == "upload_ok":
                self.assertIn(r["sop_instance_uid"], sops)
                self.assertEqual(64, len(r["sha256"]))
                self.assertEqual(200, r["http_status"])
                self.assertNotIn("?", r["url"])
        self.assertIn("token_issued", [r["event"] for r in self.orthanc.audit_records()])

        # No secret, token or presigned query string anywhere we write.
        with open(self.orthanc.audit_log_path) as f:
            audit_text = f.read()
        tokens = [e.get("token") for e in self.sim.events()
                  if isinstance(e, dict) and e.get("token")]
        for text in (audit_text, self.orthanc.log_text()):
            self.assertNotIn(self.sim.client_secret, text)
            self.assertNotIn("X-Amz-Signature", text)
            self.assertNotIn("X-Amz-Credential", text)
            self.assertNotIn("Bearer ", text)
            self.assertNotIn("access_token", text)
            for token in tokens:
                self.assertNotIn(token, text)
        status = json.dumps(self.orthanc.get("/cloud-ingest/status"))
        self.assertNotIn(self.sim.client_secret, status)


if __name__ == "__main__":
    unittest.main()
