"""Nothing lost under faults (issue 4): a flaky service, then a service that refuses
everything for longer than the backoff ceiling. The truth is what the simulator received
(/_sim/studies), checked against what Orthanc stored."""

import os
import sys
import time
import unittest

import cloudtest
import harness

GROUP_WINDOW = 5  # seconds, the simulator's and the plugin's (GroupWindow)
OVERWRITE_WINDOW = 120


# ----------------------------------------------------------------------------- helpers

def count_events(events, type_, endpoint=None):
    return sum(1 for e in events
               if e.get("type") == type_ and (endpoint is None or e.get("endpoint") == endpoint))


def start_servers(test, sim_options, section_overrides, stable_age=2):
    sim = harness.Simulator(**sim_options)
    sim.start()
    test.addCleanup(sim.close)
    orthanc = harness.Orthanc(cloud_ingest=cloudtest.ingest_section(sim, **section_overrides),
                              stable_age=stable_age)
    orthanc.start()
    test.addCleanup(orthanc.close)
    return sim, orthanc


# ----------------------------------------------------------------------------- tests

class FaultsTest(unittest.TestCase):

    def test_ten_percent_of_calls_failing_loses_nothing(self):
        sim, orthanc = start_servers(
            self, {"group_window": GROUP_WINDOW, "overwrite_window": OVERWRITE_WINDOW},
            {"GroupWindow": GROUP_WINDOW, "RetryBaseDelay": 0.2, "RetryMaxDelay": 2,
             "StudyRetryDelay": 2})
        # 10% of every call fails, the kind of failure changing every 25 calls; the
        # seeded dice make a run repeatable. 1200 calls covered: far more than needed.
        kinds = [{"status": 500}, {"status": 503, "retry_after": 1}, {"reset": True},
                 {"status": 503, "delay_ms": 400}, {"status": 502}, {"reset": True,
                                                                     "delay_ms": 200}]
        seed = int(os.environ.get("CLOUD_INGEST_FAULT_SEED", "1"))  # another run: another seed
        plan = [dict(kinds[i % len(kinds)], endpoint="*", probability=0.1, seed=seed + i,
                     count=25) for i in range(48)]
        sim.faults(plan)

        tmp = cloudtest.tmpdir(self)
        studies = [cloudtest.generate(tmp, "s%02d" % i, series=1, instances=5, size_kb=4,
                                      patient_name="Fault^%02d" % i) for i in range(20)]
        uids = [s["study_uid"] for s in studies]
        with cloudtest.explained(orthanc, sim, uids):
            for first in range(0, 20, 5):  # four storescu runs of five studies
                harness.storescu(orthanc.dicom_port,
                                 [os.path.join(tmp, "s%02d" % i) for i in range(first, first + 5)])
            for uid in uids:
                cloudtest.wait_until_sent(orthanc, uid, timeout=150)
            for uid in uids:
                cloud = cloudtest.assert_complete_in_one_batch(self, orthanc, sim, uid, 5)
                self.assertEqual([], cloud["rejected"])
                self.assertEqual("complete", cloud["api_metadata"].get("upload_status"))
            listing = orthanc.get("/cloud-ingest/studies?limit=100")["studies"]
            self.assertEqual(20, len(listing))
            self.assertEqual({"sent"}, {e["state"] for e in listing}, listing)
            self.assertEqual(set(uids), {e["study_instance_uid"] for e in listing})
            for entry in listing:
                self.assertEqual(5, entry["instances_sent"])
                self.assertEqual(5, entry["instances_total"])
            # Nothing arrived that cannot be attributed to one of the studies.
            self.assertEqual(set(uids), set(sim.studies()))
            # The faults really happened, on several endpoints.
            events = sim.events()
            fired = [e for e in events if e.get("type") == "fault_injected"]
            self.assertGreaterEqual(len(fired), 15, "too few faults fired to mean anything")
            self.assertGreaterEqual(len({e["endpoint"] for e in fired}), 3,
                                    {e["endpoint"] for e in fired})
            sys.stderr.write("\n  %d faults fired (%s); study attempts: %s\n" % (
                len(fired), ", ".join(sorted({e["endpoint"] for e in fired})),
                sorted(e["attempts"] for e in listing)))

    def test_outage_longer_than_the_backoff_ceiling_then_recovery(self):
        max_attempts, max_study_attempts = 3, 8
        sim, orthanc = start_servers(
            self, {"group_window": GROUP_WINDOW, "overwrite_window": OVERWRITE_WINDOW},
            {"GroupWindow": GROUP_WINDOW, "RetryBaseDelay": 0.2, "RetryMaxDelay": 1,
             "MaxAttempts": max_attempts, "MaxStudyAttempts": max_study_attempts,
             "StudyRetryDelay": 1})
        tmp = cloudtest.tmpdir(self)
        studies = [cloudtest.generate(tmp, "o%d" % i, series=1, instances=4, size_kb=4)
                   for i in range(3)]
        uids = [s["study_uid"] for s in studies]

        with cloudtest.explained(orthanc, sim, uids):
            # The service refuses everything, without end, until the faults are cleared.
            sim.faults({"endpoint": "*", "status": 503, "retry_after": 1, "count": 1000000})
            outage_start = time.monotonic()
            harness.storescu(orthanc.dicom_port, [os.path.join(tmp, "o%d" % i) for i in range(3)])
            ids = [orthanc.wait_for(lambda u=u: cloudtest.orthanc_study_id(orthanc, u),
                                    message="study stored") for u in uids]

            def whole_attempt_failed():
                entries = [cloudtest.plugin_entry(orthanc, i) for i in ids]
                return all(e and e["attempts"] >= 2 for e in entries)
            # Longer than RetryMaxDelay many times over: every study's first attempt gave up.
            orthanc.wait_for(whole_attempt_failed, timeout=60,
                             message="a whole study attempt failed for every study")
            while time.monotonic() - outage_start < 8:
                time.sleep(0.2)
            for entry in (cloudtest.plugin_entry(orthanc, i) for i in ids):
                self.assertIn(entry["state"], ("queued", "sending"),
                              "a study left the queue during the outage: %s" % entry)
            self.assertEqual({}, {u: s for u, s in sim.studies().items() if s["uploads"]},
                             "something was uploaded during the outage")
            sim.delete("/_sim/faults")
            recovered = time.monotonic()

            for uid in uids:
                cloudtest.wait_until_sent(orthanc, uid, timeout=90)
            recovery_time = time.monotonic() - recovered
            for uid in uids:
                cloudtest.assert_complete_in_one_batch(self, orthanc, sim, uid, 4)

            # The attempts stayed within the configured bounds.
            for study_id in ids:
                entry = cloudtest.plugin_entry(orthanc, study_id)
                self.assertGreaterEqual(entry["attempts"], 2)
                self.assertLessEqual(entry["attempts"], max_study_attempts, entry)
            events = sim.events()
            new_order_calls = (count_events(events, "fault_injected", "new-order")
                               + count_events(events, "order_created"))
            self.assertLessEqual(new_order_calls, len(uids) * max_attempts * max_study_attempts)
            self.assertEqual(len(uids), count_events(events, "order_created"))
            # Every call during the outage was refused; their number is bounded by the
            # retry policy: per study, at most MaxAttempts calls per step and attempt.
            refused = count_events(events, "fault_injected")
            self.assertGreater(refused, 0)
            self.assertLessEqual(refused, len(uids) * max_attempts * max_study_attempts)
            # Recovery does not wait for long: the study retry delay doubles from 1 s and only
            # a few attempts were spent during the outage.
            self.assertLess(recovery_time, 60)
            sys.stderr.write("\n  %d calls refused; recovered in %.1f s; attempts %s\n" % (
                refused, recovery_time, [cloudtest.plugin_entry(orthanc, i)["attempts"] for i in ids]))

    def test_outage_in_the_middle_of_a_study(self):
        sim, orthanc = start_servers(
            self, {"group_window": GROUP_WINDOW, "overwrite_window": OVERWRITE_WINDOW},
            {"GroupWindow": GROUP_WINDOW, "RetryBaseDelay": 0.2, "RetryMaxDelay": 1,
             "MaxAttempts": 3, "MaxStudyAttempts": 8, "StudyRetryDelay": 1, "Concurrency": 2})
        tmp = cloudtest.tmpdir(self)
        study = cloudtest.generate(tmp, "mid", series=1, instances=12, size_kb=4)
        uid = study["study_uid"]
        with cloudtest.explained(orthanc, sim, [uid]):
            sim.faults({"endpoint": "put", "delay_ms": 500, "count": 1000})  # slow uploads
            harness.storescu(orthanc.dicom_port, os.path.join(tmp, "mid"))
            harness.wait_until(lambda: len(sim.received_instances(uid)) >= 3, 60, 0.05,
                               "part of the study in the cloud")
            sim.delete("/_sim/faults")
            sim.faults({"endpoint": "*", "status": 503, "count": 1000000})
            partial = len(sim.received_instances(uid))
            time.sleep(GROUP_WINDOW + 2)  # longer than the grouping window, too
            self.assertLess(partial, 12, "the study was complete before the outage")
            sim.delete("/_sim/faults")
            entry = cloudtest.wait_until_sent(orthanc, uid, timeout=90)
            cloud = cloudtest.assert_complete_in_one_batch(self, orthanc, sim, uid, 12)
            self.assertGreaterEqual(entry["attempts"], 2)
            self.assertLessEqual(entry["attempts"], 8)
            self.assertEqual("complete", cloud["api_metadata"].get("upload_status"))


if __name__ == "__main__":
    unittest.main()
