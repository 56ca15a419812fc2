"""UploadMode Nifti: a diffusion series arrives as an accepted NIfTI bundle
whose .bval matches the b-values sent; a series dcm2niix cannot convert (CT)
is reported and sent as DICOM, in the same order."""

import os
import unittest

import cloudtest
import gen_diffusion
import harness


class NiftiModeTest(unittest.TestCase):
    def test_diffusion_series_arrives_as_nifti_and_ct_series_as_dicom(self):
        tmp = cloudtest.tmpdir(self)
        bvals = [0, 500, 1000, 1000, 2000]
        dwi = gen_diffusion.generate_diffusion(os.path.join(tmp, "dwi"), bvals=bvals, slices=3)
        ct = cloudtest.generate(tmp, "ct", series=1, instances=4, study_uid=dwi["study_uid"])
        with harness.Simulator() as sim, harness.Orthanc(
                cloud_ingest=cloudtest.ingest_section(sim, UploadMode="Nifti")) as orthanc:
            harness.storescu(orthanc.dicom_port, [os.path.join(tmp, "dwi"),
                                                  os.path.join(tmp, "ct")])
            entry = cloudtest.wait_until_sent(orthanc, dwi["study_uid"], timeout=120)
            self.assertEqual(len(dwi["instances"]) + 4, entry["instances_sent"])

            cloud = sim.studies()[dwi["study_uid"]]
            self.assertEqual([], cloud["rejected"])
            self.assertEqual(1, len(cloud["orders"]))
            self.assertEqual(1, len(cloud["nifti"]), cloud["nifti"])
            self.assertEqual(bvals, [float(b) for b in cloud["nifti"][0]["bvals"]])
            # The CT series was not convertible: sent as DICOM, every instance once.
            received = sim.received_instances(dwi["study_uid"])
            self.assertEqual({sop for _, sop in ct["instances"]}, received)

            history = orthanc.get("/cloud-ingest/studies/" + entry["orthanc_id"])["history"]
            notes = [h["detail"] for h in history if h["event"] == "nifti-not-convertible"]
            self.assertEqual(1, len(notes))
            self.assertIn("not a diffusion series", notes[0])
            self.assertIn("sent as DICOM", notes[0])
            uploads = [r for r in orthanc.audit_records()
                       if r.get("orthanc_study_id") == entry["orthanc_id"]
                       and r["event"] == "upload_ok" and "nifti" in r.get("detail", "")]
            self.assertEqual(1, len(uploads))
            self.assertIn("b-values 0,500,1000,1000,2000", uploads[0]["detail"])
            self.assertEqual([], os.listdir(os.path.join(orthanc.index_dir, "cloud-ingest-tmp")))

    def test_skip_fallback_sends_only_the_nifti(self):
        tmp = cloudtest.tmpdir(self)
        dwi = gen_diffusion.generate_diffusion(os.path.join(tmp, "dwi"), slices=2)
        cloudtest.generate(tmp, "ct", series=1, instances=3, study_uid=dwi["study_uid"])
        with harness.Simulator() as sim, harness.Orthanc(
                cloud_ingest=cloudtest.ingest_section(sim, UploadMode="Nifti",
                                                      NiftiFallback="Skip")) as orthanc:
            harness.storescu(orthanc.dicom_port, [os.path.join(tmp, "dwi"),
                                                  os.path.join(tmp, "ct")])
            cloudtest.wait_until_sent(orthanc, dwi["study_uid"], timeout=120)
            cloud = sim.studies()[dwi["study_uid"]]
            self.assertEqual(1, len(cloud["nifti"]))
            self.assertEqual(set(), sim.received_instances(dwi["study_uid"]))


if __name__ == "__main__":
    unittest.main()
