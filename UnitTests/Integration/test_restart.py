"""Nothing lost across crashes (issue 4): Orthanc is killed with SIGKILL at three points
of a send, and once before a study became stable; after a restart every study reaches the
cloud complete, in one live batch. The truth is what the simulator received."""

import contextlib
import json
import os
import time
import unittest

import cloudtest
import harness

GROUP_WINDOW = 5  # seconds, the simulator's and the plugin's (GroupWindow)
OVERWRITE_WINDOW = 120


# ----------------------------------------------------------------------------- helpers

def plugin_entry(orthanc, study_id):
    """GET /cloud-ingest/studies/{id} (with its history), or None."""
    status, headers, body = orthanc.request("GET", "/cloud-ingest/studies/" + study_id)
    return harness.decode_body(headers, body) if status == 200 else None


def evidence(orthanc, sim, study_uids):
    """What the plugin and the simulator say, for a failure message (no secrets in either)."""
    parts = []
    with contextlib.suppress(Exception):
        lines = [line for line in orthanc.log_text().splitlines() if "CloudIngest" in line]
        parts.append("plugin log (last 60 CloudIngest lines):\n" + "\n".join(lines[-60:]))
    studies = {}
    with contextlib.suppress(Exception):
        studies = sim.studies()
    for uid in study_uids:
        with contextlib.suppress(Exception):
            study_id = cloudtest.orthanc_study_id(orthanc, uid)
            entry = plugin_entry(orthanc, study_id) if study_id else None
            if entry:
                entry["history"] = entry.get("history", [])[-15:]
            parts.append("plugin entry %s: %s" % (uid, json.dumps(entry, indent=1)))
        cloud = studies.get(uid)
        if cloud:
            summary = [{"instances": len(b["instances"]), "uploads": b["uploads"],
                        "closed": b["closed"], "overwritten": b["overwritten"],
                        "duplicate": b["duplicate"], "orders": b["orders"]}
                       for b in cloud["batches"]]
            parts.append("cloud %s: orders=%s uploads=%s rejected=%s batches=%s"
                         % (uid, cloud["orders"], cloud["uploads"], cloud["rejected"], summary))
        else:
            parts.append("cloud %s: never seen" % uid)
    with contextlib.suppress(Exception):
        events = sim.events()
        keep = ("seq", "time", "type", "endpoint", "status", "delay_ms", "reset", "order_id",
                "filename", "http_status", "reason", "batch", "expires_in")
        parts.append("last simulator events:\n" + "\n".join(
            json.dumps({k: e[k] for k in keep if k in e}) for e in events[-30:]))
    return "\n".join(parts)


@contextlib.contextmanager
def explained(orthanc, sim, study_uids):
    """Re-raise a failed assertion or wait with the plugin's and the simulator's evidence."""
    try:
        yield
    except (AssertionError, TimeoutError, harness.WaitAborted) as e:
        raise AssertionError("%s\n---- evidence ----\n%s"
                             % (e, evidence(orthanc, sim, study_uids))) from e


def wait_for_event(sim, predicate, timeout=30, message="simulator event"):
    return harness.wait_until(lambda: [e for e in sim.events() if predicate(e)], timeout, 0.1,
                              message)


def fault_hit(endpoint):
    return lambda e: e.get("type") == "fault_injected" and e.get("endpoint") == endpoint


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
        with explained(orthanc, sim, [uid]):
            wait_for_event(sim, fault_hit("new-order"), message="the plugin asking for an order")
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
        with explained(orthanc, sim, [uid]):
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
        with explained(orthanc, sim, [uid]):
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
        with explained(orthanc, sim, [uid]):
            wait_for_event(sim, fault_hit("add-metadata"),
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
        with explained(orthanc, sim, [uid]):
            time.sleep(1)  # well inside StableAge: no StableStudy yet
            orthanc.kill9()
            self.assertNotIn(uid, sim.studies(), "sent before it was stable")
            orthanc.restart()
            # No StableStudy comes for it any more: only the catch-up from /changes finds it.
            entry = cloudtest.wait_until_sent(orthanc, uid, timeout=60)
            cloudtest.assert_complete_in_one_batch(self, orthanc, sim, uid, 6)
            self.assertEqual(6, entry["instances_sent"])

    def test_repeated_kills_while_several_studies_are_sent(self):
        sim, orthanc = self.start_servers(Concurrency=2, StudyRetryDelay=1)
        sim.faults({"endpoint": "put", "delay_ms": 300, "count": 100000})  # sends take seconds
        studies = [cloudtest.generate(self.tmp, "k%d" % i, series=1, instances=6, size_kb=4)
                   for i in range(6)]
        uids = [s["study_uid"] for s in studies]
        with explained(orthanc, sim, uids):
            harness.storescu(orthanc.dicom_port, [os.path.join(self.tmp, "k%d" % i)
                                                  for i in range(6)])
            for pause in (2.0, 3.1, 1.7, 2.6):  # four crashes at arbitrary points
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
                [h["event"] for h in plugin_entry(orthanc, cloudtest.orthanc_study_id(
                    orthanc, uid))["history"]].count("started") for uid in uids)
            self.assertGreater(started, len(uids))


if __name__ == "__main__":
    unittest.main()
