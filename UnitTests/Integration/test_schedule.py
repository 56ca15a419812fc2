"""Operating it day to day (issue 17, part B): SendWindows hold automatic sends until a
window opens, MaxSendRate caps the node's uploads, Webhooks post signed events
(retried, durable across a restart, without patient data unless asked).
Real Orthanc 1.10 with the freshly built plugin and the simulator."""

import hashlib
import hmac
import http.server
import json
import os
import sys
import threading
import time
import unittest

import cloudtest
import harness

SECRET = "hook-secret-%d" % os.getpid()


class Receiver:
    """A webhook receiver on 127.0.0.1: records every POST; answers the first
    `fail_first` of them (and all while `failing`) with 500."""

    def __init__(self, fail_first=0):
        self.posts, self.fail_first, self.failing = [], fail_first, False
        self.lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver.lock:
                    fail = receiver.failing or len(receiver.posts) < receiver.fail_first
                    receiver.posts.append({"path": self.path, "headers": dict(self.headers),
                                           "body": body, "status": 500 if fail else 200})
                answer = b"no" if fail else b"ok"
                self.send_response(500 if fail else 200)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer((harness.LOOPBACK, 0), Handler)
        self.url = "http://%s:%d" % (harness.LOOPBACK, self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)

    def accepted(self, path=None, event=None):
        """Bodies (parsed) of the posts answered 200."""
        with self.lock:
            posts = list(self.posts)
        return [json.loads(p["body"]) for p in posts
                if p["status"] == 200 and (path is None or p["path"] == path)
                and (event is None or p["headers"].get("X-CloudIngest-Event") == event)]

    def all_posts(self):
        with self.lock:
            return list(self.posts)


def history_events(entry):
    return [h["event"] for h in entry.get("history", [])]


def study_entry(orthanc, study_uid):
    study_id = cloudtest.orthanc_study_id(orthanc, study_uid)
    if not study_id:
        return None
    status, _, body = orthanc.request("GET", "/cloud-ingest/studies/" + study_id)
    return json.loads(body) if status == 200 else None


class SendWindowsTest(unittest.TestCase):
    def test_a_study_outside_the_window_waits_and_goes_when_it_opens(self):
        # The window opens at the next local minute at least 25 s away, so the
        # study is stable, claimed and postponed before it opens.
        now = time.time()
        opening = (int(now) // 60 + 1) * 60
        if opening - now < 25:
            opening += 60
        start = time.localtime(opening)
        close = time.localtime(opening + 3600)
        window = {"Days": ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"],
                  "From": time.strftime("%H:%M", start), "To": time.strftime("%H:%M", close)}
        tmp = cloudtest.tmpdir(self)
        waiting = cloudtest.generate(tmp, "waiting", instances=3, size_kb=8)
        manual = cloudtest.generate(tmp, "manual", instances=2, size_kb=8)
        with harness.Simulator() as sim, harness.Orthanc(
                cloud_ingest=cloudtest.ingest_section(sim, SendWindows=[window]),
                stable_age=1) as orthanc:
            status = orthanc.get("/cloud-ingest/status")
            self.assertFalse(status["send_windows"]["open"])
            opening_iso = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(opening))
            self.assertEqual(opening_iso, status["send_windows"]["next_opening"])

            for path, _ in waiting["instances"]:
                orthanc.upload_instance(path)
            entry = orthanc.wait_for(
                lambda: (lambda e: e if e and "waiting" in history_events(e) else None)(
                    study_entry(orthanc, waiting["study_uid"])),
                timeout=20, message="automatic study postponed")
            self.assertEqual("queued", entry["state"])
            self.assertEqual(opening_iso, entry["next_attempt_at"])
            self.assertEqual(0, entry["attempts"])
            self.assertIn("outside SendWindows", entry["history"][-1]["detail"])
            self.assertIn(opening_iso, entry["history"][-1]["detail"])

            # A manual send ignores the window; one that asks to respect it waits too.
            for path, _ in manual["instances"]:
                orthanc.upload_instance(path)
            manual_id = orthanc.wait_for(
                lambda: cloudtest.orthanc_study_id(orthanc, manual["study_uid"]))
            orthanc.post("/cloud-ingest/studies/%s/send" % manual_id, {"respect_windows": True})
            orthanc.wait_for(
                lambda: "waiting" in history_events(study_entry(orthanc, manual["study_uid"])),
                timeout=20, message="manual send respecting the window postponed")
            self.assertNotIn(waiting["study_uid"], sim.studies())
            orthanc.post("/cloud-ingest/studies/%s/send" % manual_id, {})
            cloudtest.wait_until_sent(orthanc, manual["study_uid"], timeout=30)
            self.assertLess(time.time(), opening, "the test was too slow to mean anything")
            self.assertNotIn(waiting["study_uid"], sim.studies())

            sent = cloudtest.wait_until_sent(orthanc, waiting["study_uid"],
                                             timeout=opening - time.time() + 30)
            self.assertGreaterEqual(time.time(), opening)
            cloudtest.assert_complete_in_one_batch(self, orthanc, sim, waiting["study_uid"], 3)
            self.assertEqual(1, sent["attempts"])


class MaxSendRateTest(unittest.TestCase):
    def send_and_time(self, orthanc, sim, tmp, name):
        study = cloudtest.generate(tmp, name, instances=40, size_kb=500)
        harness.storescu(orthanc.dicom_port, os.path.join(tmp, name))
        entry = cloudtest.wait_until_sent(orthanc, study["study_uid"], timeout=120)
        detail = study_entry(orthanc, study["study_uid"])
        times = {h["event"]: h["time"] for h in detail["history"]}

        def seconds(iso):
            return time.mktime(time.strptime(iso[:19], "%Y-%m-%dT%H:%M:%S")) + float(
                "0" + iso[19:23])
        cloudtest.assert_complete_in_one_batch(self, orthanc, sim, study["study_uid"], 40)
        return seconds(times["sent"]) - seconds(times["started"]), entry["bytes_sent"]

    def test_a_2mb_per_second_cap_sends_20mb_in_10_seconds_in_one_batch(self):
        tmp = cloudtest.tmpdir(self)
        with harness.Simulator() as sim, harness.Orthanc(
                cloud_ingest=cloudtest.ingest_section(sim, MaxSendRate=2000000)) as orthanc:
            capped, size = self.send_and_time(orthanc, sim, tmp, "capped")
            self.assertGreater(size, 20_000_000)
            # N bytes at the cap take at least N/cap (less one 40 ms chunk).
            self.assertGreaterEqual(capped, size / 2000000 - 0.5)
            self.assertLessEqual(capped, 12.5)
            orthanc.restart({"CloudIngest": cloudtest.ingest_section(sim)})
            free, _ = self.send_and_time(orthanc, sim, tmp, "free")
            sys.stderr.write("\n  %d bytes: %.1f s at MaxSendRate 2000000, %.1f s without\n" % (
                size, capped, free))
            self.assertLess(free * 3, capped, "without the cap: %.1f s, with: %.1f s" % (
                free, capped))


class WebhooksTest(unittest.TestCase):
    def check_signature(self, post):
        expected = "sha256=" + hmac.new(SECRET.encode(), post["body"], hashlib.sha256).hexdigest()
        self.assertEqual(expected, post["headers"].get("X-CloudIngest-Signature"))

    def test_signed_events_retried_durable_and_without_patient_data(self):
        receiver = Receiver(fail_first=1)
        self.addCleanup(receiver.close)
        hooks = [{"Url": receiver.url + "/plain", "Events": ["study_sent", "study_failed"],
                  "Secret": SECRET},
                 {"Url": receiver.url + "/phi", "Events": ["study_sent"], "Secret": SECRET,
                  "IncludePatientData": True}]
        tmp = cloudtest.tmpdir(self)
        sent = cloudtest.generate(tmp, "sent", instances=2, size_kb=8,
                                  patient_name="Webhook^Wanda")
        failed = cloudtest.generate(tmp, "failed", instances=2, size_kb=8,
                                    patient_name="Webhook^Fred")
        later = cloudtest.generate(tmp, "later", instances=2, size_kb=8,
                                   patient_name="Webhook^Lara")
        with harness.Simulator() as sim, harness.Orthanc(
                cloud_ingest=cloudtest.ingest_section(sim, Webhooks=hooks)) as orthanc:
            for path, _ in sent["instances"]:
                orthanc.upload_instance(path)
            entry = cloudtest.wait_until_sent(orthanc, sent["study_uid"])
            orthanc.wait_for(lambda: len(receiver.accepted()) == 2, timeout=30,
                             message="both study_sent posts accepted")
            # The first post was answered 500 and came again with the same body.
            posts = receiver.all_posts()
            self.assertEqual(500, posts[0]["status"])
            self.assertEqual(3, len(posts))
            self.assertIn(posts[0]["body"], [p["body"] for p in posts[1:]])
            for post in posts:
                self.check_signature(post)
                self.assertEqual("application/json", post["headers"].get("Content-Type"))
            plain = receiver.accepted("/plain", "study_sent")
            self.assertEqual(1, len(plain))
            self.assertEqual(entry["orthanc_id"], plain[0]["orthanc_study_id"])
            self.assertEqual(entry["order_id"], plain[0]["order_id"])
            self.assertNotIn(b"Wanda", [p for p in posts if p["path"] == "/plain"][0]["body"])
            self.assertNotIn(sent["study_uid"], json.dumps(plain[0]))
            phi = receiver.accepted("/phi", "study_sent")
            self.assertEqual(1, len(phi))
            self.assertEqual("Webhook^Wanda", phi[0]["patient"]["patient_name"])
            self.assertEqual(sent["study_uid"], phi[0]["study_instance_uid"])

            # A study the service refuses: study_failed to the hook that wants it only.
            sim.faults({"endpoint": "new-order", "status": 400, "count": 1})
            for path, _ in failed["instances"]:
                orthanc.upload_instance(path)
            orthanc.wait_for(lambda: receiver.accepted("/plain", "study_failed"), timeout=60,
                             message="study_failed posted")
            failure = receiver.accepted("/plain", "study_failed")[0]
            self.assertEqual("failed", failure["state"])
            self.assertIn("400", failure["error"])
            self.assertNotIn("Fred", json.dumps(failure))
            self.assertEqual([], receiver.accepted("/phi", "study_failed"))

            # The receiver is down while a study is sent, and Orthanc stops: the
            # post is delivered after the restart, once.
            receiver.failing = True
            for path, _ in later["instances"]:
                orthanc.upload_instance(path)
            cloudtest.wait_until_sent(orthanc, later["study_uid"])
            orthanc.wait_for(lambda: any(p["status"] == 500 and b"study_sent" in p["body"]
                                         for p in receiver.all_posts()[3:]),
                             timeout=30, message="a refused post")
            orthanc.stop()
            receiver.failing = False
            orthanc.restart()
            later_id = cloudtest.orthanc_study_id(orthanc, later["study_uid"])
            orthanc.wait_for(
                lambda: len([b for b in receiver.accepted(event="study_sent")
                             if b["orthanc_study_id"] == later_id]) == 2,
                timeout=60, message="the pending posts delivered after the restart")
        # Each event was accepted once per hook (the restart's catch-up may
        # send the failed study again: its own events are not counted here).
        accepted = receiver.accepted()
        ids = [b["id"] for b in accepted]
        self.assertEqual(len(ids), len(set(ids)), ids)
        sent_id = entry["orthanc_id"]
        for study_id in (sent_id, later_id):
            self.assertEqual(2, len([b for b in accepted if b["event"] == "study_sent"
                                     and b["orthanc_study_id"] == study_id]), study_id)
        self.assertEqual(1, len([b for b in accepted if b["event"] == "study_failed"]))


if __name__ == "__main__":
    unittest.main()
