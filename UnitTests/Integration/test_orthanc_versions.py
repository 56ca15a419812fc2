"""What Orthanc 1.12 adds, used only where the running Orthanc has it (issue 22): the cloud
state as labels (1.12.0), thread names in Orthanc's log (1.12.2), /changes filtered by type
(1.12.5, an index with ExtendedChanges). Each runs against ORTHANC_BINARY's version: on 1.12.x
the feature is checked, on 1.10.1 its absence (and that nothing else changes)."""

import os
import re
import unittest

import cloudtest
import harness

VERSION = harness.orthanc_version()
HAS_LABELS = VERSION >= (1, 12, 0)
HAS_THREAD_NAMES = VERSION >= (1, 12, 2)
REPORTS_CAPABILITIES = VERSION >= (1, 12, 5)
OURS = {"cloud-sending", "cloud-sent", "cloud-failed"}
FILTERED = "reading /changes filtered by type (NewStudy;StableStudy; the index has ExtendedChanges)"


def thread_names(pid):
    """The names of a process's threads as the system shows them (top -H, ps -L)."""
    names = set()
    task_dir = "/proc/%d/task" % pid
    for tid in os.listdir(task_dir):
        try:
            with open(os.path.join(task_dir, tid, "comm")) as f:
                names.add(f.read().strip())
        except OSError:
            pass  # the thread ended meanwhile
    return names


class RunningOrthancTest(cloudtest.SharedServersTestCase):
    """One Orthanc, with Labels on where the running Orthanc has labels."""

    ingest = {"Labels": {"Enable": True}, "StudyRetryDelay": 1} if HAS_LABELS else {}
    orthanc_options = {"stable_age": 1}

    def send_study(self, name, instances=2):
        study = cloudtest.generate(self.tmp, name, series=1, instances=instances, size_kb=4)
        harness.storescu(self.orthanc.dicom_port, os.path.join(self.tmp, name))
        return study["study_uid"], cloudtest.orthanc_study_id(self.orthanc, study["study_uid"])

    def labels(self, study_id):
        return set(self.orthanc.get("/studies/%s/labels" % study_id))

    def wait_for_ours(self, study_id, expected, timeout=60):
        """Waits until the study carries exactly `expected` of the plugin's labels."""
        return self.orthanc.wait_for(lambda: self.labels(study_id) & OURS == expected,
                                     timeout=timeout, message="%s on %s" % (expected, study_id))

    def plugin_state(self, study_id):
        return self.orthanc.get("/cloud-ingest/studies/" + study_id)["state"]

    @unittest.skipUnless(HAS_LABELS, "labels need Orthanc 1.12.0")
    def test_a_sent_study_is_labelled_sending_then_sent_and_keeps_its_own_labels(self):
        # Slow uploads: long enough to see the study while it is sent.
        self.sim.faults({"endpoint": "put", "delay_ms": 1500, "count": 2})
        self.addCleanup(self.sim.delete, "/_sim/faults")
        uid, study_id = self.send_study("labelled")
        self.orthanc.put("/studies/%s/labels/urgent" % study_id, "")
        self.wait_for_ours(study_id, {"cloud-sending"})
        cloudtest.wait_until_sent(self.orthanc, uid, timeout=60)
        self.wait_for_ours(study_id, {"cloud-sent"})
        self.assertEqual({"urgent", "cloud-sent"}, self.labels(study_id))
        # What Orthanc Explorer 2's label filter asks.
        found = self.orthanc.post("/tools/find", {"Level": "Study", "Query": {},
                                                  "Labels": ["cloud-sent"]})
        self.assertIn(study_id, found)
        self.assertNotIn(study_id, self.orthanc.post(
            "/tools/find", {"Level": "Study", "Query": {}, "Labels": ["cloud-failed"]}))

    @unittest.skipUnless(HAS_LABELS, "labels need Orthanc 1.12.0")
    def test_a_failed_study_is_labelled_failed_until_a_resend_sends_it(self):
        self.sim.faults({"endpoint": "new-order", "status": 400, "count": 1})
        self.addCleanup(self.sim.delete, "/_sim/faults")
        _, study_id = self.send_study("refused")
        self.orthanc.wait_for(lambda: self.plugin_state(study_id) == "failed", timeout=60,
                              message="the study failed")
        self.wait_for_ours(study_id, {"cloud-failed"})
        self.orthanc.post("/cloud-ingest/studies/%s/send" % study_id, {})
        self.orthanc.wait_for(lambda: self.plugin_state(study_id) == "sent", timeout=60,
                              message="the resend sent the study")
        self.wait_for_ours(study_id, {"cloud-sent"})

    @unittest.skipIf(HAS_LABELS, "Orthanc %s has labels" % (VERSION,))
    def test_labels_stop_the_start_of_an_orthanc_without_labels(self):
        orthanc = harness.Orthanc(cloud_ingest=cloudtest.ingest_section(
            self.sim, Labels={"Enable": True}))
        self.addCleanup(orthanc.close)
        code, log = orthanc.start_expect_failure()
        self.assertNotEqual(0, code)
        self.assertIn("CloudIngest.Labels: needs Orthanc 1.12.0 or newer (running %s)"
                      % ".".join(map(str, VERSION)), log)

    def test_the_plugins_threads_are_named(self):
        _, study_id = self.send_study("named")
        self.orthanc.wait_for(lambda: self.plugin_state(study_id) == "sent", timeout=60,
                              message="the study sent")
        # For the system on every version (top -H, ps -L, gdb).
        names = thread_names(self.orthanc.pid)
        self.assertTrue({"ci-send-1", "ci-send-2", "ci-leases", "ci-changes", "ci-jobs"} <= names,
                        names)
        log = self.orthanc.log_text()
        in_log = set(re.findall(r"^[IWE]\d{4} [\d:.]+ +(ci-[a-z]+(?:-\d+)?) ", log, re.M))
        if HAS_THREAD_NAMES:
            self.assertTrue(any(n.startswith("ci-send-") for n in in_log), in_log)
        else:
            self.assertEqual(set(), in_log)
        # 1.10 is never asked for a service it does not know.
        self.assertNotIn("unknown service", log)


class CatchUpTest(unittest.TestCase):
    """A study that became stable while the plugin was off is caught up from /changes,
    filtered by type where the index has ExtendedChanges, read page by page otherwise."""

    def test_a_study_stable_while_the_plugin_was_off_is_caught_up(self):
        sim = harness.Simulator()
        sim.start()
        self.addCleanup(sim.close)
        section = cloudtest.ingest_section(sim)
        orthanc = harness.Orthanc(cloud_ingest=section, stable_age=1)
        self.addCleanup(orthanc.close)
        orthanc.start()  # the plugin's cursor starts at the end of /changes
        orthanc.restart({"CloudIngest": dict(section, Enable=False)})
        tmp = cloudtest.tmpdir(self)
        study = cloudtest.generate(tmp, "while-off", series=1, instances=3, size_kb=4)
        harness.storescu(orthanc.dicom_port, os.path.join(tmp, "while-off"))
        study_id = cloudtest.orthanc_study_id(orthanc, study["study_uid"])
        orthanc.wait_for(lambda: orthanc.get("/studies/" + study_id)["IsStable"], timeout=30,
                         message="Orthanc's StableStudy")
        orthanc.restart({"CloudIngest": section})
        entry = cloudtest.wait_until_sent(orthanc, study["study_uid"], timeout=60)
        self.assertEqual("catch-up", entry["trigger"])
        log = orthanc.log_text()
        if REPORTS_CAPABILITIES and orthanc.get("/system")["Capabilities"]["HasExtendedChanges"]:
            self.assertIn(FILTERED, log)
        else:
            self.assertNotIn("filtered by type", log)


if __name__ == "__main__":
    unittest.main()
