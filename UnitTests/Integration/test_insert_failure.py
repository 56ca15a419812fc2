"""A stable study is not lost when its insert into the plugin's queue fails in Orthanc's
change callback (disk full, I/O error). The failure is injected in the real database: a
trigger, created through a second SQLite connection, refuses every new study row. The
plugin's /changes tracker must then hold its cursor before that study and insert it once
it can, so that neither the running plugin nor the catch-up after a crash loses it."""

import contextlib
import os
import sqlite3
import time
import unittest

import cloudtest
import harness

POLL = 1        # ChangesPollInterval
SETTLE = 10     # the tracker waits this long after a StableStudy (ChangeTracker)


class InsertFailureTest(unittest.TestCase):

    def setUp(self):
        self.sim = harness.Simulator()
        self.sim.start()
        self.addCleanup(self.sim.close)
        self.orthanc = harness.Orthanc(
            cloud_ingest=cloudtest.ingest_section(self.sim, ChangesPollInterval=POLL),
            stable_age=1)
        self.orthanc.start()
        self.addCleanup(self.orthanc.close)
        self.tmp = cloudtest.tmpdir(self)
        self.db = os.path.join(self.orthanc.index_dir, "cloud-ingest.db")
        self.assertTrue(os.path.exists(self.db))

    def fail_inserts(self, fail):
        with contextlib.closing(sqlite3.connect(self.db, timeout=10)) as db:
            if fail:
                db.execute("CREATE TRIGGER fail_new_study BEFORE INSERT ON studies BEGIN "
                           "SELECT RAISE(ABORT, 'injected: database or disk is full'); END")
            else:
                db.execute("DROP TRIGGER fail_new_study")
            db.commit()

    def store_refused_study(self, name):
        """Stores a study while inserts fail; returns (uid, orthanc id, StableStudy seq)."""
        study = cloudtest.generate(self.tmp, name, series=1, instances=3, size_kb=4)
        harness.storescu(self.orthanc.dicom_port, os.path.join(self.tmp, name))
        uid = study["study_uid"]
        study_id = self.orthanc.wait_for(lambda: cloudtest.orthanc_study_id(self.orthanc, uid),
                                         message="the study stored")
        self.orthanc.wait_for(
            lambda: ("cannot record change for " + study_id) in self.orthanc.log_text(),
            timeout=30, message="the refused insert in the change callback")
        self.assertIsNone(cloudtest.plugin_entry(self.orthanc, study_id))
        changes = self.orthanc.get("/changes?limit=1000")["Changes"]
        stable = [c["Seq"] for c in changes
                  if c["ChangeType"] == "StableStudy" and c["ID"] == study_id]
        self.assertTrue(stable, changes)
        return uid, study_id, stable[0]

    def test_the_running_plugin_inserts_the_study_once_it_can(self):
        self.fail_inserts(True)
        uid, study_id, _ = self.store_refused_study("refused-live")
        self.fail_inserts(False)
        with cloudtest.explained(self.orthanc, self.sim, [uid]):
            cloudtest.wait_until_sent(self.orthanc, uid, timeout=SETTLE + 30)
            cloudtest.assert_complete_in_one_batch(self, self.orthanc, self.sim, uid, 3)

    def test_a_crash_while_inserts_fail_loses_nothing(self):
        self.fail_inserts(True)
        uid, study_id, stable_seq = self.store_refused_study("refused-crash")
        # Long enough for the tracker to have moved past the study, were it allowed to.
        time.sleep(SETTLE + 3 * POLL)
        cursor = self.orthanc.get("/cloud-ingest/status")["changes_cursor"]
        self.assertLess(cursor, stable_seq, "the cursor moved past a study not in the queue")
        self.orthanc.kill9()
        self.fail_inserts(False)
        self.orthanc.restart()
        with cloudtest.explained(self.orthanc, self.sim, [uid]):
            entry = cloudtest.wait_until_sent(self.orthanc, uid, timeout=60)
            self.assertEqual("catch-up", entry["trigger"])
            cloudtest.assert_complete_in_one_batch(self, self.orthanc, self.sim, uid, 3)


if __name__ == "__main__":
    unittest.main()
