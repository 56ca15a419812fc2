"""The Docker image's build steps, proven without a Docker engine: CI runs the
same Docker/build-plugin.sh the Dockerfile runs, then loads the result into a
real Orthanc with the image's Docker/cloud-ingest.json (values from the
environment, as docker-compose.yml passes them) and sends a study."""

import json
import os
import subprocess
import unittest

import cloudtest
import harness

DOCKER = os.path.join(harness.REPO_ROOT, "Docker")


class DockerBuildTest(unittest.TestCase):
    def test_image_build_steps_give_a_working_plugin(self):
        tmp = cloudtest.tmpdir(self)
        out = os.path.join(tmp, "out")
        build_dir = os.path.join(os.environ.get("CLOUD_INGEST_BUILD_DIR", tmp), "docker-build")
        run = subprocess.run(["bash", os.path.join(DOCKER, "build-plugin.sh"), out],
                             env=dict(os.environ, CLOUD_INGEST_DOCKER_BUILD_DIR=build_dir),
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=1200)
        self.assertEqual(0, run.returncode, run.stdout.decode("utf-8", "replace")[-3000:])
        plugin = os.path.join(out, "libOrthancCloudIngest.so")
        self.assertTrue(os.path.isfile(plugin))

        with open(os.path.join(DOCKER, "cloud-ingest.json")) as f:
            section = json.load(f)["CloudIngest"]
        with harness.Simulator() as sim:
            os.environ.update(CLOUD_INGEST_URL=sim.url, CLOUD_INGEST_CLIENT_ID=sim.client_id,
                              CLOUD_INGEST_CLIENT_SECRET=sim.client_secret)
            try:
                with harness.Orthanc(cloud_ingest=section, plugins=[plugin]) as orthanc:
                    status = orthanc.get("/cloud-ingest/status")
                    self.assertTrue(status["enabled"])
                    self.assertEqual(sim.url, status["url"])
                    study = cloudtest.generate(tmp, instances=3)
                    harness.storescu(orthanc.dicom_port, os.path.join(tmp, "study"))
                    cloudtest.wait_until_sent(orthanc, study["study_uid"])
                    cloudtest.assert_complete_in_one_batch(self, orthanc, sim,
                                                           study["study_uid"], 3)
            finally:
                for key in ("CLOUD_INGEST_URL", "CLOUD_INGEST_CLIENT_ID",
                            "CLOUD_INGEST_CLIENT_SECRET"):
                    os.environ.pop(key, None)


if __name__ == "__main__":
    unittest.main()
