"""Nothing lost to timing (issue 4): short token and URL lifetimes on slow uploads, a study
that arrives in two parts further apart than StableAge (both LateInstances policies), and a
StableStudy that fires again for a study already sent. The truth is what the simulator
received (/_sim/studies), checked against what Orthanc stored."""

import contextlib
import os
import sys
import time
import unittest

import cloudtest
import harness

GROUP_WINDOW = 5  # seconds, the simulator's and the plugin's (GroupWindow)
OVERWRITE_WINDOW = 120


# ----------------------------------------------------------------------------- helpers

def wait_requeued_and_settled(orthanc, study_id, queued_before, timeout=30):
    """Until the plugin took a new event for the study (a "queued" entry more in its history)
    and is done with it (state sent again); returns the entry."""
    def settled():
        entry = cloudtest.plugin_entry(orthanc, study_id)
        return entry if (entry and cloudtest.queued_count(entry) > queued_before
                         and entry["state"] == "sent") else None
    return orthanc.wait_for(settled, timeout, 0.3, "the study taken again and settled")


# ----------------------------------------------------------------------------- tests

class TimingTest(unittest.TestCase):

    def start_servers(self, sim_options=None, stable_age=2, orthanc_extra=None, **section):
        options = dict({"group_window": GROUP_WINDOW, "overwrite_window": OVERWRITE_WINDOW},
                       **(sim_options or {}))
        self.sim = harness.Simulator(**options)
        self.sim.start()
        self.addCleanup(self.sim.close)
        section = dict({"GroupWindow": GROUP_WINDOW, "StudyRetryDelay": 2}, **section)
        self.orthanc = harness.Orthanc(cloud_ingest=cloudtest.ingest_section(self.sim, **section),
                                       stable_age=stable_age, extra=orthanc_extra)
        self.orthanc.start()
        self.addCleanup(self.orthanc.close)
        self.tmp = cloudtest.tmpdir(self)
        return self.sim, self.orthanc

    def assert_final_batch_complete(self, uid, expected_count):
        """One live batch (the others overwritten) holding every stored instance, byte-identical."""
        study_id = cloudtest.orthanc_study_id(self.orthanc, uid)
        cloud = self.sim.studies()[uid]
        live = cloudtest.live_batches(cloud)
        self.assertEqual(1, len(live), "expected one live batch, got %d" % len(live))
        self.assertIs(live[0], cloud["batches"][-1])
        expected = cloudtest.stored_md5s(self.orthanc, study_id)
        self.assertEqual(expected_count, len(expected))
        sops = [i["sop_instance_uid"] for i in live[0]["instances"]]
        self.assertEqual(len(sops), len(set(sops)))
        self.assertEqual(expected, {i["sop_instance_uid"]: i["md5"] for i in live[0]["instances"]})
        return cloud

    def send_part(self, name, part):
        harness.storescu(self.orthanc.dicom_port, os.path.join(self.tmp, name, part))

    def wait_batch_closed(self, uid):
        """The service closed the study's last batch: what comes next starts a new one."""
        harness.wait_until(lambda: self.sim.studies()[uid]["batches"][-1]["closed"],
                           GROUP_WINDOW + 10, 0.2, "the batch of %s closed" % uid)

    def test_short_token_and_url_lifetimes_on_slow_uploads(self):
        sim, orthanc = self.start_servers({"token_ttl": 3, "url_ttl": 1})
        # The first PUTs are slower than the URL's lifetime: the store refuses them (expired).
        sim.faults({"endpoint": "put", "delay_ms": 1500, "count": 6})
        studies = [cloudtest.generate(self.tmp, "t%d" % i, series=1, instances=8, size_kb=6)
                   for i in range(3)]
        uids = [s["study_uid"] for s in studies]
        with cloudtest.explained(orthanc, sim, uids):
            for i in range(3):  # further apart than the token's lifetime
                harness.storescu(orthanc.dicom_port, os.path.join(self.tmp, "t%d" % i))
                if i < 2:
                    time.sleep(4)
            entries = [cloudtest.wait_until_sent(orthanc, uid, timeout=90) for uid in uids]
            for uid in uids:
                cloudtest.assert_complete_in_one_batch(self, orthanc, sim, uid, 8)
            for entry in entries:
                full = cloudtest.plugin_entry(orthanc, entry["orthanc_id"])
                events = [h["event"] for h in full["history"]]
                self.assertNotIn("failed", events, full["history"])
                self.assertNotIn("retry", events, full["history"])
                # An expired URL or token is routine: it must not cost a whole study attempt.
                self.assertEqual(1, full["attempts"], full["history"])
            events = sim.events()
            refused = [e for e in events if e.get("type") == "upload_refused"]
            self.assertGreaterEqual(len(refused), 1, "no URL expired: the test proves nothing")
            self.assertEqual(24, sum(1 for e in events if e.get("type") == "upload_ok"))
            self.assertGreater(sum(1 for e in events if e.get("type") == "url_issued"), 24)
            issued = [e for e in events if e.get("type") == "token_issued"]
            self.assertGreaterEqual(len(issued), 2, "the token was never renewed")
            self.assertEqual(len(issued), len({e["token"] for e in issued}))
            sys.stderr.write("\n  %d PUTs refused (%s), %d URLs, %d tokens\n" % (
                len(refused), sorted({str(e.get("reason")) for e in refused}),
                sum(1 for e in events if e.get("type") == "url_issued"), len(issued)))

    def test_late_instances_resend_the_whole_study(self):
        sim, orthanc = self.start_servers()  # LateInstances: "Resend" by default
        study = cloudtest.generate(self.tmp, "late", series=2, instances=3, size_kb=6)
        uid = study["study_uid"]
        with cloudtest.explained(orthanc, sim, [uid]):
            self.send_part("late", "series1")
            first = cloudtest.wait_until_sent(orthanc, uid, timeout=60)
            self.assertEqual(3, first["instances_sent"])
            self.assertEqual(3, len(sim.received_instances(uid)))
            self.wait_batch_closed(uid)  # so the resend cannot simply join the first batch

            self.send_part("late", "series2")
            study_id = first["orthanc_id"]
            entry = orthanc.wait_for(
                lambda: (lambda e: e if e and e["state"] == "sent"
                         and e["instances_sent"] == 6 else None)(cloudtest.plugin_entry(orthanc, study_id)),
                timeout=60, interval=0.3, message="the whole study sent again")
            cloud = self.assert_final_batch_complete(uid, 6)
            self.assertTrue(cloud["batches"][0]["overwritten"], cloud["batches"])
            self.assertEqual(3, len(cloud["batches"][0]["instances"]))
            self.assertIn(entry["order_id"], cloud["batches"][-1]["orders"])
            self.assertEqual("6", cloud["api_metadata"].get("number_of_instances"))
            self.assertEqual("complete", cloud["api_metadata"].get("upload_status"))

    def test_late_instances_arriving_while_the_study_is_sent(self):
        sim, orthanc = self.start_servers(Concurrency=1)
        study = cloudtest.generate(self.tmp, "during", series=2, instances=4, size_kb=6)
        uid = study["study_uid"]
        with cloudtest.explained(orthanc, sim, [uid]):
            sim.faults({"endpoint": "put", "delay_ms": 1000, "count": 4})  # ~4 s for part 1
            self.send_part("during", "series1")
            harness.wait_until(lambda: sim.received_instances(uid), 30, 0.1,
                               "the first part being sent")
            self.send_part("during", "series2")  # stable again while part 1 is still sent
            study_id = cloudtest.orthanc_study_id(orthanc, uid)
            entry = orthanc.wait_for(
                lambda: (lambda e: e if e and e["state"] == "sent"
                         and e["instances_sent"] == 8 else None)(cloudtest.plugin_entry(orthanc, study_id)),
                timeout=60, interval=0.3, message="the whole study sent")
            cloud = self.assert_final_batch_complete(uid, 8)
            self.assertIn(entry["order_id"], cloud["batches"][-1]["orders"])
            self.assertEqual("8", cloud["api_metadata"].get("number_of_instances"))
            self.assertEqual("complete", cloud["api_metadata"].get("upload_status"))
            # The case under test did happen: the second StableStudy came during the first send.
            events = [h["event"] for h in cloudtest.plugin_entry(orthanc, study_id)["history"]]
            first_sent = events.index("sent")
            self.assertIn("queued", events[events.index("started"):first_sent], events)

    def test_late_instances_ignored(self):
        sim, orthanc = self.start_servers(LateInstances="Ignore")
        study = cloudtest.generate(self.tmp, "late", series=2, instances=3, size_kb=6)
        uid = study["study_uid"]
        first_part = {sop for path, sop in study["instances"] if "series1" in path}
        with cloudtest.explained(orthanc, sim, [uid]):
            self.send_part("late", "series1")
            first = cloudtest.wait_until_sent(orthanc, uid, timeout=60)
            study_id = first["orthanc_id"]
            self.wait_batch_closed(uid)
            before = sim.studies()[uid]
            queued_before = cloudtest.queued_count(cloudtest.plugin_entry(orthanc, study_id))

            self.send_part("late", "series2")
            entry = wait_requeued_and_settled(orthanc, study_id, queued_before)
            time.sleep(2)  # anything sent now would show below
            self.assertEqual(6, len(orthanc.get("/studies/%s/instances" % study_id)))
            cloud = sim.studies()[uid]
            self.assertEqual(before["uploads"], cloud["uploads"], "late instances were sent")
            self.assertEqual(before["orders"], cloud["orders"])
            self.assertEqual(1, len(cloud["batches"]))
            self.assertEqual(first_part, {i["sop_instance_uid"]
                                          for i in cloud["batches"][0]["instances"]})
            # The plugin reports the study as sent, as it was sent: the first part.
            entry = cloudtest.plugin_entry(orthanc, study_id)
            self.assertEqual("sent", entry["state"])
            self.assertEqual(first["order_id"], entry["order_id"])
            self.assertEqual(3, entry["instances_sent"])

    def test_stable_again_without_change_does_not_resend(self):
        # With OverwriteInstances, storing the same files again makes Orthanc report the study
        # stable again (without it, duplicates are dropped and no event fires at all).
        sim, orthanc = self.start_servers(orthanc_extra={"OverwriteInstances": True})
        study = cloudtest.generate(self.tmp, "again", series=1, instances=5, size_kb=6)
        uid = study["study_uid"]
        with cloudtest.explained(orthanc, sim, [uid]):
            self.send_part("again", "")
            first = cloudtest.wait_until_sent(orthanc, uid, timeout=60)
            study_id = first["orthanc_id"]
            cloudtest.assert_complete_in_one_batch(self, orthanc, sim, uid, 5)
            before = sim.studies()[uid]
            url_count = sum(1 for e in sim.events() if e.get("type") == "url_issued")

            # 1. The same files again: StableStudy fires again for an unchanged study.
            last_change = orthanc.get("/changes?last")["Last"]
            self.send_part("again", "")
            queued_before = cloudtest.queued_count(cloudtest.plugin_entry(orthanc, study_id))
            wait_requeued_and_settled(orthanc, study_id, queued_before)
            changes = orthanc.get("/changes?since=%d&limit=1000" % last_change)["Changes"]
            self.assertIn("StableStudy", [c["ChangeType"] for c in changes])
            time.sleep(2)
            after = sim.studies()[uid]
            self.assertEqual(before["uploads"], after["uploads"], "the study was sent again")
            self.assertEqual(before["orders"], after["orders"])
            self.assertEqual(url_count,
                             sum(1 for e in sim.events() if e.get("type") == "url_issued"))

            # 2. A restart: the catch-up scan looks at the study again.
            queued_before = cloudtest.queued_count(cloudtest.plugin_entry(orthanc, study_id))
            orthanc.restart()
            with contextlib.suppress(TimeoutError):  # the scan may skip it: fine, if not sent
                wait_requeued_and_settled(orthanc, study_id, queued_before, timeout=10)
            time.sleep(2)
            after = sim.studies()[uid]
            self.assertEqual(before["uploads"], after["uploads"], "the study was sent again")
            self.assertEqual(before["orders"], after["orders"])
            self.assertEqual(1, len(after["batches"]))

            # The entry still describes the send that happened.
            entry = cloudtest.plugin_entry(orthanc, study_id)
            self.assertEqual("sent", entry["state"])
            self.assertEqual(first["order_id"], entry["order_id"])
            self.assertEqual(5, entry["instances_sent"])
            self.assertEqual(5, entry["instances_total"])
            self.assertEqual(first["sent_at"], entry["sent_at"])


if __name__ == "__main__":
    unittest.main()
