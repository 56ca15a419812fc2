"""The web surface in a real browser: /cloud-ingest/app/ and the Orthanc Explorer button.

Starts the simulator and Orthanc with the plugin, sends two studies by storescu (one whose
PatientName is an HTML injection attempt), waits until both are sent, then runs the
playwright-core tests in UnitTests/Browser (node --test, Debian's chromium) against them and
checks that the clicks in the browser really reached the cloud.
"""

import os
import re
import shutil
import subprocess
import sys
import unittest

import cloudtest
import harness

BROWSER_DIR = os.path.join(harness.REPO_ROOT, "UnitTests", "Browser")
HOSTILE_NAME = "<img src=x onerror=alert(1)>"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class WebAppBrowserTest(unittest.TestCase):
    def test_web_page_and_explorer_extension_in_chromium(self):
        self.assertTrue(os.path.exists("/usr/bin/chromium"), "Debian's chromium is needed")
        harness.ensure_node_modules(BROWSER_DIR)  # npm ci with the committed lock file
        tmp = cloudtest.tmpdir(self)
        shots = os.environ.get("CLOUD_INGEST_SCREENSHOT_DIR") or os.path.join(tmp, "screenshots")

        viewer, operator = ("vera", "vera-pw"), ("otto", "otto-pw")
        with harness.Simulator() as sim:
            # Roles: the main tests run as the harness's admin; vera and otto for the role tests.
            orthanc = harness.Orthanc(cloud_ingest=cloudtest.ingest_section(sim, Permissions={
                "Users": {"admin": "admin", viewer[0]: "viewer", operator[0]: "operator"}}))
            orthanc.extra["RegisteredUsers"] = {orthanc.auth[0]: orthanc.auth[1],
                                                viewer[0]: viewer[1], operator[0]: operator[1]}
            with orthanc:
                self.run_browser_tests(tmp, shots, sim, orthanc, viewer, operator)

        for name in ("webapp.png", "explorer.png", "webapp-viewer.png"):
            with open(os.path.join(shots, name), "rb") as f:
                data = f.read()
            self.assertTrue(data.startswith(PNG_MAGIC), name + " is not a PNG")
            self.assertGreater(len(data), 10000, name + " looks empty")

    def run_browser_tests(self, tmp, shots, sim, orthanc, viewer, operator):
        plain = cloudtest.generate(tmp, "plain", series=1, instances=4, size_kb=8,
                                   patient_name="Doe^Jane", study_description="Chest CT")
        hostile = cloudtest.generate(tmp, "hostile", series=1, instances=2, size_kb=8,
                                     patient_name=HOSTILE_NAME)
        harness.storescu(orthanc.dicom_port, [os.path.join(tmp, "plain"),
                                              os.path.join(tmp, "hostile")])
        plain_entry = cloudtest.wait_until_sent(orthanc, plain["study_uid"])
        hostile_entry = cloudtest.wait_until_sent(orthanc, hostile["study_uid"])
        self.assertEqual(HOSTILE_NAME, hostile_entry["patient_name"])
        orders_before = len(sim.studies()[plain["study_uid"]]["orders"])

        env = harness.loopback_env({
            "ORTHANC_URL": orthanc.url,
            "ORTHANC_USER": orthanc.auth[0],
            "ORTHANC_PASSWORD": orthanc.auth[1],
            "STUDY_ID": plain_entry["orthanc_id"],
            "HOSTILE_STUDY_ID": hostile_entry["orthanc_id"],
            "SCREENSHOT_DIR": shots,
            "CLOUD_CLIENT_SECRET": sim.client_secret,
            "VIEWER_USER": viewer[0], "VIEWER_PASSWORD": viewer[1],
            "OPERATOR_USER": operator[0], "OPERATOR_PASSWORD": operator[1],
        })
        node = shutil.which("node") or "node"
        run = subprocess.run([node, "--test", "test_webapp.mjs"], cwd=BROWSER_DIR, env=env,
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, timeout=600)
        output = run.stdout.decode("utf-8", "replace")
        self.assertEqual(0, run.returncode, "browser tests failed:\n" + output[-12000:])
        self.assertRegex(output, r"(?m)^# pass [1-9]\d*$")
        self.assertRegex(output, r"(?m)^# fail 0$")
        self.assertRegex(output, r"(?m)^# skipped 0$")  # the role tests ran too
        summary = re.findall(r"(?m)^# ((?:tests|pass|fail|skipped) \d+)$", output)
        sys.stderr.write("browser tests: %s\n" % ", ".join(summary))

        # The Resend click on the page and the explorer's "Send to cloud" each made a new
        # order in the cloud; the hostile study was left alone.
        cloud = sim.studies()
        self.assertGreaterEqual(len(cloud[plain["study_uid"]]["orders"]), orders_before + 2)
        self.assertEqual(1, len(cloud[hostile["study_uid"]]["orders"]))
        final = orthanc.get("/cloud-ingest/studies/" + plain_entry["orthanc_id"])
        self.assertEqual("sent", final["state"])
        self.assertEqual("manual", final["trigger"])
        self.assertEqual(orthanc.auth[0], final["requested_by"])


if __name__ == "__main__":
    unittest.main()
