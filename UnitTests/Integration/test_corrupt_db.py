"""A corrupt plugin database does not stop Orthanc: the file is moved aside, the
plugin starts with an empty queue, says so in /cloud-ingest/status, and queues
again every study still in Orthanc's /changes (the images matter more than the
queue). The truth is what the simulator received."""

import os
import re
import unittest

import cloudtest
import harness


class CorruptDatabaseTest(unittest.TestCase):

    def setUp(self):
        self.sim = harness.Simulator()
        self.sim.start()
        self.addCleanup(self.sim.close)
        self.orthanc = harness.Orthanc(cloud_ingest=cloudtest.ingest_section(self.sim),
                                       stable_age=1)
        self.orthanc.start()
        self.addCleanup(self.orthanc.close)
        self.tmp = cloudtest.tmpdir(self)

    def send_study(self, name, instances):
        study = cloudtest.generate(self.tmp, name, series=1, instances=instances, size_kb=4)
        harness.storescu(self.orthanc.dicom_port, os.path.join(self.tmp, name))
        return study["study_uid"]

    def plugin_state(self, uid):
        study_id = cloudtest.orthanc_study_id(self.orthanc, uid)
        entry = cloudtest.plugin_entry(self.orthanc, study_id) if study_id else None
        return entry["state"] if entry else None

    def test_garbage_database_is_moved_aside_and_the_changes_are_caught_up(self):
        sim, orthanc = self.sim, self.orthanc
        sent_before = self.send_study("sent-before", 3)
        cloudtest.wait_until_sent(orthanc, sent_before, timeout=60)
        # A second study the plugin tried and failed to send (its order refused):
        # after the recovery, only Orthanc's /changes still know about it.
        sim.faults({"endpoint": "new-order", "status": 400, "count": 1})
        failed_before = self.send_study("failed-before", 2)
        orthanc.wait_for(lambda: self.plugin_state(failed_before) == "failed", timeout=60,
                         message="the second study failed")
        self.assertEqual(0, orthanc.stop())

        database = os.path.join(orthanc.index_dir, "cloud-ingest.db")
        self.assertTrue(os.path.isfile(database))
        garbage = b"this is no SQLite database, just bytes \x00\xff\x13\x37. " * 300
        with open(database, "wb") as f:
            f.write(garbage)
        for suffix in ("-wal", "-shm"):
            if os.path.exists(database + suffix):
                os.remove(database + suffix)

        orthanc.restart()  # must start: the images matter more than the queue
        status = orthanc.get("/cloud-ingest/status")
        recovered = status.get("database_recovered")
        self.assertIsNotNone(recovered, status)
        moved = recovered["moved_to"]
        self.assertRegex(moved, "^" + re.escape(database) + r"\.corrupt-\d{8}T\d{6}Z$")
        self.assertRegex(recovered["at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")
        self.assertIn("not a database", recovered["reason"])
        with open(moved, "rb") as f:
            self.assertEqual(garbage, f.read())
        error_lines = [line for line in orthanc.log_text().splitlines()
                       if "was corrupt" in line and moved in line]
        self.assertEqual(1, len(error_lines), orthanc.log_text()[-3000:])

        with cloudtest.explained(orthanc, sim, [sent_before, failed_before]):
            # Both studies come back from the catch-up of the whole /changes log.
            entry = cloudtest.wait_until_sent(orthanc, failed_before, timeout=60)
            self.assertEqual("catch-up", entry["trigger"])
            cloudtest.assert_complete_in_one_batch(self, orthanc, sim, failed_before, 2)
            entry = cloudtest.wait_until_sent(orthanc, sent_before, timeout=60)
            self.assertEqual("catch-up", entry["trigger"])
            # Sent again (the record that it was sent is what got lost): the new
            # upload overwrites the first one.
            cloudtest.assert_complete_in_one_batch(self, orthanc, sim, sent_before, 3, orders=2)

        arrived_after = self.send_study("arrived-after", 2)
        with cloudtest.explained(orthanc, sim, [arrived_after]):
            entry = cloudtest.wait_until_sent(orthanc, arrived_after, timeout=60)
            self.assertEqual("auto", entry["trigger"])
            cloudtest.assert_complete_in_one_batch(self, orthanc, sim, arrived_after, 2)

        # The new database is healthy: the next start opens it as it is. A
        # restart within the tracker's settle time looks at the last study
        # again (it may show queued or sending for a moment), but finds it
        # unchanged: no second order, no second upload.
        orthanc.restart()
        status = orthanc.get("/cloud-ingest/status")
        self.assertIsNone(status.get("database_recovered"), status)
        with cloudtest.explained(orthanc, sim, [arrived_after]):
            cloudtest.wait_until_sent(orthanc, arrived_after, timeout=60)
            cloudtest.assert_complete_in_one_batch(self, orthanc, sim, arrived_after, 2)


class UnopenableDatabaseTest(unittest.TestCase):
    """A database the plugin cannot open, without being able to judge it
    corrupt, still stops Orthanc, and nothing is moved."""

    def test_a_folder_in_place_of_the_database_stops_orthanc_with_one_line(self):
        parent = cloudtest.tmpdir(self)
        folder = os.path.join(parent, "cloud-ingest.db")
        os.mkdir(folder)
        section = {"Url": "http://127.0.0.1:9", "ClientId": "id", "ClientSecret": "s3cret-value",
                   "Database": folder}
        orthanc = harness.Orthanc(cloud_ingest=section, authentication=False)
        try:
            code, log = orthanc.start_expect_failure(timeout=30)
        finally:
            orthanc.close()
        self.assertNotEqual(0, code, "Orthanc started without its plugin database")
        lines = [line for line in log.splitlines() if "CloudIngest.Database: " in line]
        self.assertEqual(1, len(lines), log[-3000:])
        self.assertIn(folder, lines[0])
        self.assertIn("; ", lines[0].split("CloudIngest.Database: ", 1)[1])
        self.assertTrue(os.path.isdir(folder))
        self.assertEqual(["cloud-ingest.db"], os.listdir(parent))


if __name__ == "__main__":
    unittest.main()
