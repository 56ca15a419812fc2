"""Operating the plugin (issue 17, part A) against a real Orthanc 1.10 and the simulator:
sends in Orthanc's /jobs as CloudIngestSend jobs (live while running, cancellable there,
ending Success or Failure) that hold none of Orthanc's job workers and push no user's job out
of Orthanc's job history (issue 22), a durable queue pause, a bulk resend of failed studies,
and a preview that matches the send that follows it."""

import json
import os
import sys
import time
import unittest

import cloudtest
import harness


def send_jobs(orthanc):
    """Orthanc's CloudIngestSend jobs, expanded."""
    return [j for j in orthanc.get("/jobs?expand") if j.get("Type") == "CloudIngestSend"]


def job_of(orthanc, study_id, state):
    jobs = [j for j in send_jobs(orthanc)
            if j["Content"].get("orthanc_study_id") == study_id and j["State"] == state]
    return jobs[-1] if jobs else None


class OperationsTest(unittest.TestCase):

    def start_servers(self, extra=None, **section_overrides):
        self.sim = harness.Simulator()
        self.sim.start()
        self.addCleanup(self.sim.close)
        section = dict({"StudyRetryDelay": 2}, **section_overrides)
        self.orthanc = harness.Orthanc(cloud_ingest=cloudtest.ingest_section(self.sim, **section),
                                       stable_age=1, extra=extra)
        self.orthanc.start()
        self.addCleanup(self.orthanc.close)
        self.tmp = cloudtest.tmpdir(self)
        return self.sim, self.orthanc

    def store_study(self, name, instances=3, size_kb=6, **kwargs):
        """Stores a generated study; returns (its StudyInstanceUID, its Orthanc id)."""
        study = cloudtest.generate(self.tmp, name, series=1, instances=instances, size_kb=size_kb,
                                   **kwargs)
        harness.storescu(self.orthanc.dicom_port, os.path.join(self.tmp, name))
        uid = study["study_uid"]
        return uid, cloudtest.orthanc_study_id(self.orthanc, uid)

    def wait_state(self, study_id, state, timeout=60):
        def reached():
            entry = cloudtest.plugin_entry(self.orthanc, study_id)
            return entry if entry and entry["state"] == state else None
        return self.orthanc.wait_for(reached, timeout=timeout, interval=0.2,
                                     message="study %s %s" % (study_id, state))

    def test_sends_show_as_live_orthanc_jobs_that_hold_no_job_worker(self):
        # One job worker for all of Orthanc: a job holding it would stall the archive below.
        # "Jobs": "All" keeps every send's job, automatic ones included, once ended.
        sim, orthanc = self.start_servers(extra={"ConcurrentJobs": 1}, Concurrency=1, Jobs="All")
        uid, study_id = self.store_study("sent", instances=4)
        entry = cloudtest.wait_until_sent(orthanc, uid)
        job = orthanc.wait_for(lambda: job_of(orthanc, study_id, "Success"), timeout=10,
                               message="a CloudIngestSend job with Success")
        content = job["Content"]
        self.assertNotIn("study_instance_uid", content)  # any Orthanc user may read /jobs
        self.assertNotIn(uid, str(job))
        self.assertEqual(entry["order_id"], content["order_id"])
        self.assertEqual(4, content["instances_sent"])
        self.assertEqual(4, content["instances_total"])
        self.assertEqual(100, job["Progress"])

        # A refused order: the study fails, and so does its job, with the server's message.
        sim.faults({"endpoint": "new-order", "status": 400, "count": 1})
        orthanc.post("/cloud-ingest/studies/%s/send" % study_id, {})
        self.wait_state(study_id, "failed")
        failed = orthanc.wait_for(lambda: job_of(orthanc, study_id, "Failure"), timeout=10,
                                  message="a CloudIngestSend job with Failure")
        self.assertIn("injected fault", failed["Content"]["error"])
        self.assertEqual(0, failed["Content"]["instances_sent"])

        # A running send is a live job: parked ("Paused") between its steps, so a user's
        # archive job still gets the only worker at once, with its progress following the
        # send; cancelling it in /jobs cancels the send.
        sim.faults({"endpoint": "put", "delay_ms": 1500, "count": 100})
        orthanc.post("/cloud-ingest/studies/%s/send" % study_id, {})
        live = orthanc.wait_for(lambda: job_of(orthanc, study_id, "Paused"), timeout=20,
                                message="a live CloudIngestSend job")
        self.assertEqual("sending", live["Content"]["outcome"])
        started = time.monotonic()
        archive = orthanc.post("/studies/%s/archive" % study_id, {"Asynchronous": True})
        orthanc.wait_for(lambda: orthanc.get("/jobs/%s" % archive["ID"])["State"] == "Success",
                         timeout=10, interval=0.1, message="the archive job done")
        self.assertLess(time.monotonic() - started, 3)
        orthanc.wait_for(
            lambda: orthanc.get("/jobs/%s" % live["ID"])["Content"]["instances_sent"] >= 1,
            timeout=20, message="the job's progress following the send")
        self.assertEqual("sending", cloudtest.plugin_entry(orthanc, study_id)["state"])
        orthanc.post("/jobs/%s/cancel" % live["ID"], {})
        self.wait_state(study_id, "cancelled", timeout=20)
        self.assertEqual("Failure", orthanc.get("/jobs/%s" % live["ID"])["State"])
        sim.delete("/_sim/faults")
        time.sleep(2)  # a refresh pass or two: the cancel must not add a second job
        runs = [j for j in send_jobs(orthanc) if j["Content"]["orthanc_study_id"] == study_id]
        self.assertEqual(3, len(runs), [j["Content"] for j in runs])

        # No job left standing after a restart: Orthanc keeps none of ours.
        orthanc.restart()
        self.assertEqual([], send_jobs(orthanc))

    def test_automatic_sends_push_no_users_job_out_of_orthancs_job_history(self):
        """Orthanc keeps only JobsHistorySize (default 10) ended jobs and forgets the oldest.
        At default settings a user's archive job started before 30 automatic sends still
        answers with its archive after them: on Orthanc 1.10 an automatic send gets no job,
        and from 1.12.2 on each send's job is deleted once it ended. A send a person asks
        for still shows as a CloudIngestSend job."""
        sim, orthanc = self.start_servers()
        version = orthanc.get("/system")["Version"]  # "mainline": newer than any release
        deletes = version == "mainline" or tuple(map(int, version.split("."))) >= (1, 12, 2)
        uid, study_id = self.store_study("mine", instances=2)
        cloudtest.wait_until_sent(orthanc, uid)

        # A requested send is a live job while it runs (its upload held 2 s).
        sim.faults({"endpoint": "put", "delay_ms": 2000, "count": 2})
        orthanc.post("/cloud-ingest/studies/%s/send" % study_id, {})
        orthanc.wait_for(lambda: [j for j in send_jobs(orthanc) if j["State"] == "Paused"
                                  and j["Content"]["orthanc_study_id"] == study_id
                                  and j["Content"]["trigger"] == "manual"],
                         timeout=20, message="the requested send's live job")
        self.wait_state(study_id, "sent", timeout=30)

        # The user's own job: an archive to download later.
        archive = orthanc.post("/studies/%s/archive" % study_id, {"Asynchronous": True})["ID"]
        orthanc.wait_for(lambda: orthanc.get("/jobs/" + archive)["State"] == "Success",
                         timeout=30, message="the archive job done")

        count = 30
        started = time.monotonic()
        for i in range(count):
            study = cloudtest.generate(self.tmp, "auto%02d" % i, series=1, instances=1, size_kb=2)
            orthanc.upload_instance(study["instances"][0][0])

        def all_sent():
            sent = orthanc.get("/cloud-ingest/studies?state=sent&limit=1000")["studies"]
            return len(sent) >= count + 1
        orthanc.wait_for(all_sent, timeout=120, interval=0.5, message="the automatic sends done")
        elapsed = time.monotonic() - started
        sys.stderr.write("\n%d automatic sends in %.1f s\n" % (count, elapsed))

        # Every send's job has taken its last step (or is gone).
        orthanc.wait_for(lambda: all(j["State"] in ("Success", "Failure")
                                     for j in send_jobs(orthanc)),
                         timeout=20, message="every send's job ended")
        status, _, body = orthanc.request("GET", "/jobs/" + archive)
        self.assertEqual(200, status, "the user's archive job is gone from Orthanc's history")
        self.assertEqual("Success", json.loads(body)["State"])
        status, _, body = orthanc.request("GET", "/jobs/%s/archive" % archive)
        self.assertEqual(200, status, body[:200])
        self.assertEqual(b"PK", body[:2])
        if deletes:  # each send's job goes once ended
            orthanc.wait_for(lambda: not send_jobs(orthanc), timeout=20,
                             message="no send's job left in the history")
        else:  # only the requested send has a job
            self.assertEqual([study_id], [j["Content"]["orthanc_study_id"]
                                          for j in send_jobs(orthanc)])

    def test_a_paused_queue_sends_nothing_even_after_a_restart_until_resumed(self):
        sim, orthanc = self.start_servers()
        answer = orthanc.post("/cloud-ingest/queue/pause", {})
        self.assertEqual({"paused": True, "stopped": 0}, answer)
        self.assertTrue(orthanc.get("/cloud-ingest/status")["paused"])
        uid, study_id = self.store_study("held")
        self.wait_state(study_id, "queued")
        time.sleep(4)  # a pause is the absence of sends: give them time to (not) happen
        self.assertNotIn(uid, sim.studies())
        self.assertIn("cloud_ingest_queue_paused 1",
                      orthanc.request("GET", "/tools/metrics-prometheus")[2].decode())

        orthanc.restart()
        self.assertTrue(orthanc.get("/cloud-ingest/status")["paused"])
        time.sleep(4)
        self.assertEqual("queued", cloudtest.plugin_entry(orthanc, study_id)["state"])
        self.assertNotIn(uid, sim.studies())

        self.assertEqual({"paused": False}, orthanc.post("/cloud-ingest/queue/resume", {}))
        self.assertFalse(orthanc.get("/cloud-ingest/status")["paused"])
        cloudtest.wait_until_sent(orthanc, uid, timeout=30)
        cloudtest.assert_complete_in_one_batch(self, orthanc, sim, uid, 3)

    def test_a_pause_can_stop_the_running_send_which_goes_again_on_resume(self):
        sim, orthanc = self.start_servers(Concurrency=1)
        sim.faults({"endpoint": "put", "delay_ms": 700, "count": 3})
        uid, study_id = self.store_study("stopped", instances=5)
        self.wait_state(study_id, "sending")
        answer = orthanc.post("/cloud-ingest/queue/pause", {"cancel_running": True})
        self.assertEqual(1, answer["stopped"])
        self.assertEqual("queued", cloudtest.plugin_entry(orthanc, study_id)["state"])
        error = orthanc.post("/cloud-ingest/queue/pause", {"cancel_running": "yes"},
                             expect_status=400)
        self.assertIn("cancel_running", error["error"])
        orthanc.post("/cloud-ingest/queue/resume", {})
        cloudtest.wait_until_sent(orthanc, uid, timeout=60)
        cloud = sim.studies()[uid]
        self.assertEqual(2, len(cloud["orders"]))  # the stopped send's and the new one
        events = [h["event"] for h in cloudtest.plugin_entry(orthanc, study_id)["history"]]
        self.assertIn("paused", events)

    def test_failed_studies_come_back_with_one_bulk_call(self):
        sim, orthanc = self.start_servers()
        sim.faults({"endpoint": "new-order", "status": 400, "count": 2})
        first_uid, first = self.store_study("first")
        second_uid, second = self.store_study("second")
        self.wait_state(first, "failed")
        self.wait_state(second, "failed")
        error = orthanc.post("/cloud-ingest/studies/send", {"limit": 5}, expect_status=400)
        self.assertIn("at least one", error["error"])

        answer = orthanc.post("/cloud-ingest/studies/send", {"state": "failed", "modality": "CT"},
                              expect_status=202)
        self.assertEqual(2, answer["queued"])
        self.assertEqual({first, second}, {s["orthanc_id"] for s in answer["studies"]})
        for uid in (first_uid, second_uid):
            cloudtest.wait_until_sent(orthanc, uid, timeout=30)
            cloudtest.assert_complete_in_one_batch(self, orthanc, sim, uid, 3)
        with open(orthanc.audit_log_path) as f:
            audit = f.read()
        self.assertEqual(2, audit.count('"detail":"bulk resend"'))

    def test_the_preview_matches_the_following_send(self):
        sim, orthanc = self.start_servers(AutoSend=False, Filters={"Modalities": ["MR"]},
                                          OrderMetadata={"site": {"Value": "site-7"}})
        uid, study_id = self.store_study("previewed", instances=4, size_kb=10)
        preview = orthanc.get("/cloud-ingest/studies/%s/preview" % study_id)
        self.assertFalse(preview["would_send"])
        self.assertIn("Filters", preview["blocked_by"])
        self.assertIn("AutoSend is false", preview["blocked_by"])
        self.assertFalse(preview["filters"]["match"])
        self.assertTrue(preview["send_window"]["open"])
        self.assertEqual("Instances", preview["mode"])
        self.assertEqual(4, preview["instances"])
        stored = sum(len(orthanc.request("GET", "/instances/%s/file" % i["ID"])[2])
                     for i in orthanc.get("/studies/%s/instances" % study_id))
        self.assertEqual(stored, preview["bytes"])
        self.assertNotIn(uid, sim.studies())  # nothing sent
        self.assertIsNone(cloudtest.plugin_entry(orthanc, study_id))  # nor queued

        orthanc.post("/cloud-ingest/studies/%s/send" % study_id, {})  # manual: no Filters
        cloudtest.wait_until_sent(orthanc, uid, timeout=30)
        cloud = cloudtest.assert_complete_in_one_batch(self, orthanc, sim, uid, 4)
        sent = dict(cloud["api_metadata"])
        for key in ("upload_status", "number_of_instances_uploaded"):
            sent.pop(key, None)
        self.assertEqual(preview["order_metadata"], sent)
        self.assertEqual("site-7", sent["site"])
        again = orthanc.get("/cloud-ingest/studies/%s/preview" % study_id)
        self.assertTrue(again["unchanged"])
        orthanc.get("/cloud-ingest/studies/0000/preview", expect_status=404)


if __name__ == "__main__":
    unittest.main()
