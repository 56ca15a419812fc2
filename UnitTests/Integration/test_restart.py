"""Nothing lost across crashes (issue 4): Orthanc is killed with SIGKILL at three points
of a send, and once before a study became stable; after a restart every study reaches the
cloud complete, in one live batch. The truth is what the simulator received."""

import os
import time
import unittest

import cloudtest
import harness

GROUP_WINDOW = 5  # seconds, the simulator's and the plugin's (GroupWindow)
OVERWRITE_WINDOW = 120


# ----------------------------------------------------------------------------- helpers

# ----------------------------------------------------------------------------- tests

class RestartTest(unittest.TestCase):

    def start_servers(self, stable_age=2, **section_overrides):
        self.sim = harness.Simulator(group_window=GROUP_WINDOW, overwrite_window=OVERWRITE_WINDOW)
        self.sim.start()
        self.addCleanup(self.sim.close)
        section = dict({"GroupWindow": GROUP_WINDOW, "StudyRetryDelay": 2}, **section_overrides)
        self.orthanc = harness.Orthanc(cloud_ingest=cloudtest.ingest_section(self.sim, **section),
                                       stable_age=stable_age)
        self.orthanc.start()
        self.addCleanup(self.orthanc.close)
        self.tmp = cloudtest.tmpdir(self)
        return self.sim, self.orthanc

    def send_study(self, name, instances):
        study = cloudtest.generate(self.tmp, name, series=1, instances=instances, size_kb=6)
        harness.storescu(self.orthanc.dicom_port, os.path.join(self.tmp, name))
        return study

    def test_kill_before_the_order(self):
        sim, orthanc = self.start_servers()
        # The order request hangs: the plugin is waiting for it when Orthanc dies.
        sim.faults({"endpoint": "new-order", "delay_ms": 20000, "count": 1})
        study = self.send_study("before-order", 6)
        uid = study["study_uid"]
        with cloudtest.explained(orthanc, sim, [uid]):
            cloudtest.wait_for_event(sim, cloudtest.fault_hit("new-order"), message="the plugin asking for an order")
            time.sleep(0.3)
            orthanc.kill9()
            self.assertNotIn(uid, sim.studies(), "an order was created before the kill")
            orthanc.restart()
            entry = cloudtest.wait_until_sent(orthanc, uid, timeout=60)
            cloud = cloudtest.assert_complete_in_one_batch(self, orthanc, sim, uid, 6)
            self.assertEqual(entry["order_id"], cloud["orders"][0])
            self.assertEqual("complete", cloud["api_metadata"].get("upload_status"))

    def test_kill_in_the_middle_of_the_uploads(self):
        sim, orthanc = self.start_servers(Concurrency=2)
        # Every PUT takes a second: the study is half uploaded when Orthanc dies.
        sim.faults({"endpoint": "put", "delay_ms": 1000, "count": 1000})
        study = self.send_study("mid-study", 10)
        uid = study["study_uid"]
        with cloudtest.explained(orthanc, sim, [uid]):
            harness.wait_until(lambda: len(sim.received_instances(uid)) >= 3, 60, 0.1,
                               "some instances in the cloud")
            orthanc.kill9()
            sim.delete("/_sim/faults")
            partial = sim.studies()[uid]["batches"]
            self.assertEqual(1, len(partial))
            self.assertLess(len(partial[0]["instances"]), 10, "the study was complete already")
            # Let the partial batch close, so the resumed send starts a batch of its own
            # that must overwrite it.
            harness.wait_until(lambda: sim.studies()[uid]["batches"][-1]["closed"],
                               GROUP_WINDOW + 10, 0.2, "the partial batch closed")
            orthanc.restart()
            cloudtest.wait_until_sent(orthanc, uid, timeout=60)
            cloud = cloudtest.assert_complete_in_one_batch(self, orthanc, sim, uid, 10)
            self.assertTrue(cloud["batches"][0]["overwritten"], cloud["batches"])
            self.assertEqual("complete", cloud["api_metadata"].get("upload_status"))

    def test_graceful_stop_in_the_middle_of_the_uploads(self):
        sim, orthanc = self.start_servers(Concurrency=2)
        sim.faults({"endpoint": "put", "delay_ms": 700, "count": 1000})
        study = self.send_study("sigterm", 10)
        uid = study["study_uid"]
        with cloudtest.explained(orthanc, sim, [uid]):
            harness.wait_until(lambda: len(sim.received_instances(uid)) >= 3, 60, 0.1,
                               "some instances in the cloud")
            orthanc.stop()  # SIGTERM: the plugin stops between two instances
            sim.delete("/_sim/faults")
            self.assertLess(len(sim.received_instances(uid)), 10,
                            "the study was complete before the stop")
            orthanc.restart()
            cloudtest.wait_until_sent(orthanc, uid, timeout=60)
            cloud = cloudtest.assert_complete_in_one_batch(self, orthanc, sim, uid, 10)
            self.assertEqual("complete", cloud["api_metadata"].get("upload_status"))

    def test_kill_before_the_metadata(self):
        sim, orthanc = self.start_servers()
        # Every instance is uploaded; add-metadata hangs when Orthanc dies.
        sim.faults({"endpoint": "add-metadata", "delay_ms": 20000, "count": 1})
        study = self.send_study("before-metadata", 5)
        uid = study["study_uid"]
        with cloudtest.explained(orthanc, sim, [uid]):
            cloudtest.wait_for_event(sim, cloudtest.fault_hit("add-metadata"),
                           message="the plugin sending the metadata")
            self.assertEqual(5, len(sim.received_instances(uid)))
            time.sleep(0.3)
            orthanc.kill9()
            orthanc.restart()
            entry = cloudtest.wait_until_sent(orthanc, uid, timeout=60)
            cloud = cloudtest.assert_complete_in_one_batch(self, orthanc, sim, uid, 5)
            self.assertEqual(entry["order_id"], cloud["orders"][0])
            self.assertEqual("complete", cloud["api_metadata"].get("upload_status"))
            self.assertEqual("5", cloud["api_metadata"].get("number_of_instances_uploaded"))
            added = [e for e in sim.events() if e.get("type") == "metadata_added"]
            self.assertEqual(1, len(added), added)

    def test_study_arriving_before_a_crash_is_caught_up_after_restart(self):
        sim, orthanc = self.start_servers(stable_age=5)
        study = self.send_study("unstable", 6)
        uid = study["study_uid"]
        with cloudtest.explained(orthanc, sim, [uid]):
            time.sleep(1)  # well inside StableAge: no StableStudy yet
            orthanc.kill9()
            self.assertNotIn(uid, sim.studies(), "sent before it was stable")
            orthanc.restart()
            # No StableStudy comes for it any more: only the catch-up from /changes finds it.
            entry = cloudtest.wait_until_sent(orthanc, uid, timeout=60)
            cloudtest.assert_complete_in_one_batch(self, orthanc, sim, uid, 6)
            self.assertEqual(6, entry["instances_sent"])

    def test_a_crash_after_a_quiet_spell_does_not_look_at_sent_studies_again(self):
        # While running, the plugin follows /changes and moves the point the start-up scan
        # begins at past studies it has accounted for; after a crash only newer changes are
        # scanned (before, every study since the previous start was looked up again).
        sim, orthanc = self.start_servers(ChangesPollInterval=1)
        uids = [self.send_study("quiet%d" % i, 3)["study_uid"] for i in range(3)]
        with cloudtest.explained(orthanc, sim, uids):
            ids = [cloudtest.wait_until_sent(orthanc, uid)["orthanc_id"] for uid in uids]
            last = orthanc.get("/changes?last")["Last"]
            # The cursor waits 10 s after a StableStudy (until OnChange surely recorded it).
            orthanc.wait_for(lambda: orthanc.get("/cloud-ingest/status")["changes_cursor"] >= last,
                             timeout=40, interval=0.5, message="the changes cursor to catch up")
            queued = {i: cloudtest.queued_count(cloudtest.plugin_entry(orthanc, i)) for i in ids}
            orthanc.kill9()
            orthanc.restart()
            time.sleep(3)  # the catch-up scan runs right after the start
            self.assertNotIn("queued to catch up", orthanc.log_text())
            for i in ids:
                entry = cloudtest.plugin_entry(orthanc, i)
                self.assertEqual(queued[i], cloudtest.queued_count(entry), entry["history"])
            for uid in uids:
                cloudtest.assert_complete_in_one_batch(self, orthanc, sim, uid, 3)

    def test_with_auto_send_off_a_restart_sends_nothing_on_its_own(self):
        sim, orthanc = self.start_servers(AutoSend=False)
        study = self.send_study("kept", 3)
        uid = study["study_uid"]
        time.sleep(0.5)
        orthanc.kill9()  # before StableStudy: the catch-up scan will see the study
        orthanc.restart()
        time.sleep(4)  # past StableAge and the start-up scan
        self.assertNotIn(uid, sim.studies())
        self.assertNotIn("queued to catch up", orthanc.log_text())
        study_id = cloudtest.orthanc_study_id(orthanc, uid)
        self.assertIsNone(cloudtest.plugin_entry(orthanc, study_id))
        # A manual send still works.
        orthanc.post("/cloud-ingest/studies/%s/send" % study_id, {})
        cloudtest.wait_until_sent(orthanc, uid)
        cloudtest.assert_complete_in_one_batch(self, orthanc, sim, uid, 3)

    def test_repeated_kills_while_several_studies_are_sent(self):
        sim, orthanc = self.start_servers(Concurrency=2, StudyRetryDelay=1)
        sim.faults({"endpoint": "put", "delay_ms": 300, "count": 100000})  # sends take seconds
        studies = [cloudtest.generate(self.tmp, "k%d" % i, series=1, instances=6, size_kb=4)
                   for i in range(6)]
        uids = [s["study_uid"] for s in studies]
        with cloudtest.explained(orthanc, sim, uids):
            harness.storescu(orthanc.dicom_port, [os.path.join(self.tmp, "k%d" % i)
                                                  for i in range(6)])
            # The first crash surely cuts a send short (a PUT is in flight), the next three
            # land at arbitrary points.
            cloudtest.wait_for_event(sim, cloudtest.fault_hit("put"), timeout=60,
                                     message="a PUT under way")
            orthanc.kill9()
            orthanc.restart()
            for pause in (3.1, 1.7, 2.6):
                time.sleep(pause)
                orthanc.kill9()
                orthanc.restart()
            sim.delete("/_sim/faults")
            for uid in uids:
                cloudtest.wait_until_sent(orthanc, uid, timeout=120)
            for uid in uids:
                cloudtest.assert_complete_in_one_batch(self, orthanc, sim, uid, 6)
            # Some sends were really cut short: more attempts started than there are studies.
            started = sum(
                [h["event"] for h in cloudtest.plugin_entry(orthanc, cloudtest.orthanc_study_id(
                    orthanc, uid))["history"]].count("started") for uid in uids)
            self.assertGreater(started, len(uids))


if __name__ == "__main__":
    unittest.main()
