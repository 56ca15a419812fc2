"""Deidentify: what reaches the cloud is de-identified by Orthanc's own engine
with deterministic pseudonyms, in Instances and Zip mode; Orthanc keeps the
original study untouched; a study with burned-in annotations is refused."""

import hashlib
import hmac
import json
import os
import unittest

import cloudtest
import harness

KEY = "integration-pseudonym-key-5f0c2a9e"
PATIENT = {"patient_name": "Müller^Jürgen", "patient_id": "PID-7731-ZQ",
           "birth_date": "19451231", "institution": "Klinikum Süd-Ost",
           "charset": "ISO_IR_192", "private_identity": True}


def hmac16(value):
    return hmac.new(KEY.encode(), value.encode(), hashlib.sha256).digest()[:16]


def pseudo_uid(original):
    return "2.25.%d" % int.from_bytes(hmac16(original), "big")


def pseudo_patient(original):
    return hmac16(original).hex().upper()


def identifiers(study, accession):
    """Every original identifier of a generated study, as bytes a file could hold."""
    values = [PATIENT["patient_name"], "Müller", "Jürgen", PATIENT["patient_id"],
              PATIENT["birth_date"], PATIENT["institution"], "Klinikum", accession,
              study["study_uid"]] + study["series_uids"] + [sop for _, sop in study["instances"]]
    return [v.encode("utf-8") for v in values]


class DeidentifyTest(cloudtest.SharedServersTestCase):
    """One simulator (keeping its objects in a folder we read) and one Orthanc."""

    ingest = {"Deidentify": {"Enable": True, "Profile": "Basic", "PseudonymKey": KEY}}

    @classmethod
    def simulator_args(cls):
        cls.data_dir = os.path.join(cls.tmp, "s3")
        os.makedirs(cls.data_dir)
        return ("--data-dir", cls.data_dir)

    def store(self, name, accession, **kwargs):
        options = dict(PATIENT, series=2, instances=3, size_kb=8, accession_number=accession)
        options.update(kwargs)
        study = cloudtest.generate(self.tmp, name, **options)
        harness.storescu(self.orthanc.dicom_port, os.path.join(self.tmp, name))
        return study

    def uploaded_bytes(self):
        """Every file the store holds (objects and their metadata)."""
        blobs = []
        for folder, _, files in os.walk(self.data_dir):
            for name in files:
                with open(os.path.join(folder, name), "rb") as f:
                    blobs.append((os.path.join(folder, name), f.read()))
        self.assertTrue(blobs, "the store holds nothing")
        return blobs

    def assert_nothing_identifies(self, study, accession):
        for path, data in self.uploaded_bytes():
            for value in identifiers(study, accession):
                self.assertNotIn(value, data, "%r found in %s" % (value, path))
        everything = json.dumps(self.sim.get("/_sim/studies"), ensure_ascii=False).encode()
        everything += json.dumps(self.sim.events(), ensure_ascii=False).encode()
        for value in identifiers(study, accession):
            self.assertNotIn(value, everything, "%r reached the service" % value)

    def wait_sent_by_pseudonym(self, study_uid, count):
        def arrived():
            cloud = self.sim.studies().get(pseudo_uid(study_uid))
            live = cloudtest.live_batches(cloud or {})
            done = cloud and cloud["metadata"].get("upload_status") == "complete"
            return cloud if done and live and len(live[-1]["instances"]) == count else None
        return self.orthanc.wait_for(arrived, timeout=90, message="the de-identified study")

    def assert_pseudonymous(self, study, cloud):
        live = cloudtest.live_batches(cloud)
        self.assertEqual(1, len(live))
        instances = live[0]["instances"]
        self.assertEqual({pseudo_uid(sop) for _, sop in study["instances"]},
                         {i["sop_instance_uid"] for i in instances})
        by_series = {}
        for i in instances:
            by_series.setdefault(i["series_instance_uid"], set()).add(i["sop_instance_uid"])
        # Series grouping kept: the same instances under each series' pseudonym.
        expected = {}
        for path, sop in study["instances"]:
            series_index = int(os.path.basename(os.path.dirname(path))[len("series"):]) - 1
            expected.setdefault(pseudo_uid(study["series_uids"][series_index]), set()).add(
                pseudo_uid(sop))
        self.assertEqual(expected, by_series)
        metadata = cloud["metadata"]
        self.assertEqual(pseudo_uid(study["study_uid"]), metadata["study_instance_uid"])
        self.assertEqual(pseudo_patient(PATIENT["patient_id"]), metadata["patient_id"])
        self.assertEqual(pseudo_patient(PATIENT["patient_id"]), metadata["patient_name"])
        for key in ("patient_birth_date", "accession_number", "institution_name"):
            self.assertFalse(metadata.get(key), "%s in the order: %s" % (key, metadata))
        self.assertNotIn("orthanc_study_id", json.dumps(metadata))

    def test_instances_are_deidentified_with_stable_pseudonyms(self):
        study = self.store("first", "ACC-5512-XY")
        study_id = cloudtest.orthanc_study_id(self.orthanc, study["study_uid"])
        before = cloudtest.stored_md5s(self.orthanc, study_id)
        entry = cloudtest.wait_until_sent(self.orthanc, study["study_uid"])
        with cloudtest.explained(self.orthanc, self.sim, [pseudo_uid(study["study_uid"])]):
            cloud = self.wait_sent_by_pseudonym(study["study_uid"], 6)
            self.assertNotIn(study["study_uid"], self.sim.studies())
            self.assert_pseudonymous(study, cloud)
            self.assert_nothing_identifies(study, "ACC-5512-XY")

            # Orthanc holds exactly the original study, and no de-identified copy.
            self.assertEqual(before, cloudtest.stored_md5s(self.orthanc, study_id))
            self.assertEqual(6, len(before))
            self.assertIn(study_id, self.orthanc.get("/studies"))
            self.assertEqual([], [s for s in self.orthanc.get("/studies?expand")
                                  if s["MainDicomTags"]["StudyInstanceUID"].startswith("2.25.")])

            # The audit log keeps both UIDs of the send.
            sent = [e for e in self.orthanc.audit_records()
                    if e.get("orthanc_study_id") == entry["orthanc_id"]
                    and e["event"] == "study_sent"]
            self.assertEqual(1, len(sent))
            self.assertEqual(study["study_uid"], sent[0]["study_instance_uid"])
            self.assertEqual(pseudo_uid(study["study_uid"]),
                             sent[0]["pseudonymous_study_instance_uid"])
            # The operator's page keeps the original identity.
            self.assertEqual(study["study_uid"], entry["study_instance_uid"])

            # The preview shows the operator both values, and an order of pseudonyms.
            preview = self.orthanc.get("/cloud-ingest/studies/%s/preview" % study_id)
            replaced = preview["deidentify"]
            self.assertEqual(study["study_uid"], replaced["study_instance_uid"]["original"])
            self.assertEqual(pseudo_uid(study["study_uid"]),
                             replaced["study_instance_uid"]["pseudonym"])
            self.assertNotEqual(replaced["patient_id"]["original"],
                                replaced["patient_id"]["pseudonym"])
            order_text = json.dumps(preview["order_metadata"])
            self.assertIn(pseudo_uid(study["study_uid"]), order_text)
            self.assertNotIn(study["study_uid"], order_text)
            self.assertNotIn(replaced["patient_id"]["original"], order_text)

            # A second send gives the same pseudonyms and the same bytes.
            uid = pseudo_uid(study["study_uid"])
            first = {i["sop_instance_uid"]: i["md5"] for i in cloud["batches"][0]["instances"]}
            self.orthanc.post("/cloud-ingest/studies/%s/send" % study_id, {})
            self.orthanc.wait_for(lambda: self.sim.studies()[uid]["uploads"] >= 12, timeout=90,
                                  message="the second send")
            cloudtest.wait_until_sent(self.orthanc, study["study_uid"])
            cloud = self.sim.studies()[uid]
            self.assertEqual(12, cloud["uploads"])
            for batch in cloud["batches"]:
                self.assertEqual(first, {i["sop_instance_uid"]: i["md5"]
                                         for i in batch["instances"]})
            self.assertEqual(before, cloudtest.stored_md5s(self.orthanc, study_id))

    def test_zip_mode_and_a_second_study_of_the_patient(self):
        study = self.store("zipped", "ACC-9090-ZP")
        study_id = cloudtest.orthanc_study_id(self.orthanc, study["study_uid"])
        before = cloudtest.stored_md5s(self.orthanc, study_id)
        cloudtest.wait_until_sent(self.orthanc, study["study_uid"])
        self.wait_sent_by_pseudonym(study["study_uid"], 6)
        with cloudtest.explained(self.orthanc, self.sim, [pseudo_uid(study["study_uid"])]):
            self.orthanc.post("/cloud-ingest/studies/%s/send" % study_id, {"mode": "Zip"})
            uid = pseudo_uid(study["study_uid"])
            self.orthanc.wait_for(
                lambda: [b for b in self.sim.studies()[uid]["batches"]
                         if "zip" in b.get("sources", []) and len(b["instances"]) == 6],
                timeout=90, message="the de-identified ZIP")
            cloud = self.sim.studies()[uid]
            self.assertEqual([], cloud["rejected"])
            zipped = [b for b in cloud["batches"] if "zip" in b.get("sources", [])][0]
            self.assertEqual(
                {i["sop_instance_uid"] for i in cloud["batches"][0]["instances"]},
                {i["sop_instance_uid"] for i in zipped["instances"]})
            self.assertEqual({pseudo_uid(s) for s in study["series_uids"]},
                             {i["series_instance_uid"] for i in zipped["instances"]})
            self.assert_nothing_identifies(study, "ACC-9090-ZP")
            zips = [p for p, _ in self.uploaded_bytes() if ".zip" in p]
            self.assertTrue(zips)
            self.assertFalse([p for p in zips if study["study_uid"] in p])
            self.assertEqual(before, cloudtest.stored_md5s(self.orthanc, study_id))
            # The same patient's studies share one patient pseudonym.
            self.assertEqual(pseudo_patient(PATIENT["patient_id"]), cloud["metadata"]["patient_id"])

    def test_burned_in_annotation_is_refused_with_its_reason(self):
        study = self.store("burned", "ACC-4040-BI", series=1, instances=2, burned_in="YES")

        def failed():
            study_id = cloudtest.orthanc_study_id(self.orthanc, study["study_uid"])
            entry = cloudtest.plugin_entry(self.orthanc, study_id) if study_id else None
            return entry if entry and entry["state"] == "failed" else None
        entry = self.orthanc.wait_for(failed, timeout=60, message="the burned-in study failed")
        self.assertIn("BurnedInAnnotation YES", entry["last_error"])
        self.assertNotIn(pseudo_uid(study["study_uid"]), self.sim.studies())
        self.assertFalse([e for e in self.sim.events() if e["type"] == "order_created"
                          and pseudo_uid(study["study_uid"]) in json.dumps(e)])


class DeidentifyConfigurationTest(unittest.TestCase):
    def test_missing_key_and_reidentifying_order_metadata_stop_orthanc(self):
        cases = [
            ({"Deidentify": {"Enable": True}}, "CloudIngest.Deidentify.PseudonymKey: "),
            ({"Deidentify": {"PseudonymKey": KEY},
              "OrderMetadata": {"hospital": "InstitutionName"}},
             "CloudIngest.OrderMetadata.hospital: "),
        ]
        with harness.Simulator() as sim:
            for extra, expected in cases:
                with self.subTest(expected=expected):
                    orthanc = harness.Orthanc(cloud_ingest=cloudtest.ingest_section(sim, **extra))
                    try:
                        _, log = orthanc.start_expect_failure()
                    finally:
                        orthanc.close()
                    self.assertIn(expected, log)
                    self.assertNotIn(KEY, log)


if __name__ == "__main__":
    unittest.main()
