"""Roles on /cloud-ingest/, the tamper-evident audit log and delivery receipts,
against a real Orthanc with several RegisteredUsers and the cloud simulator."""

import contextlib
import hashlib
import hmac
import http.client
import json
import os
import shutil
import subprocess
import sys
import time
import unittest
import urllib.error

import cloudtest
import harness

VERIFIER = os.path.join(harness.REPO_ROOT, "Resources", "verify-audit.py")
AUDIT_KEY = "integration-audit-key"
USERS = {"vera": "viewer", "otto": "operator", "nobody": "none"}
PASSWORD = "pw-%s"


def run_verifier(*args):
    """(exit code, JSON answer) of Resources/verify-audit.py."""
    run = subprocess.run([sys.executable, VERIFIER] + list(args), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, timeout=60)
    return run.returncode, json.loads(run.stdout.decode())


class SecurityTest(cloudtest.SharedServersTestCase):
    # "Jobs": "All": the automatic send below gets its job on Orthanc 1.10 too.
    ingest = {"Permissions": {"Users": dict(USERS, admin="admin"), "Default": "none"},
              "AuditKey": AUDIT_KEY, "NodeName": "node-it", "Jobs": "All"}

    @classmethod
    def prepare(cls):
        users = {name: PASSWORD % name for name in list(USERS) + ["stranger"]}
        users[cls.orthanc.auth[0]] = cls.orthanc.auth[1]
        cls.orthanc.restart({"RegisteredUsers": users})
        cls.study = cloudtest.generate(cls.tmp, series=1, instances=3, size_kb=8)
        for path, _ in cls.study["instances"]:
            cls.orthanc.upload_instance(path)
        cloudtest.wait_until_sent(cls.orthanc, cls.study["study_uid"])
        cls.study_id = cloudtest.orthanc_study_id(cls.orthanc, cls.study["study_uid"])

    def as_user(self, user, method, path, body=None):
        auth = self.orthanc.auth if user == "admin" else (user, PASSWORD % user)
        return self.orthanc.request(method, path, body, auth=auth)

    def routes(self):
        study = "/cloud-ingest/studies/" + self.study_id
        return [("GET", "/cloud-ingest/status", "viewer"),
                ("GET", "/cloud-ingest/studies", "viewer"),
                ("GET", study, "viewer"),
                ("GET", study + "/receipt", "viewer"),
                ("GET", "/cloud-ingest/me", "viewer"),
                ("GET", "/cloud-ingest/app/index.html", "viewer"),
                ("GET", "/cloud-ingest/app/app.js", "viewer"),
                ("POST", study + "/cancel", "operator"),
                ("POST", "/cloud-ingest/test-connection", "admin"),
                ("GET", "/cloud-ingest/audit/verify", "admin")]

    def test_each_role_gets_its_routes_and_refusals_are_audited(self):
        rank = ["none", "viewer", "operator", "admin"]
        for user, role in [("nobody", "none"), ("stranger", "none"), ("vera", "viewer"),
                           ("otto", "operator"), ("admin", "admin")]:
            for method, path, required in self.routes():
                status, _, body = self.as_user(user, method, path)
                if rank.index(role) < rank.index(required):
                    self.assertEqual(403, status, (user, method, path, body))
                    self.assertIn("error", json.loads(body))
                    records = [r for r in self.orthanc.audit_records()
                               if r["event"] == "access_denied" and r.get("user") == user
                               and r.get("route") == path and r.get("method") == method]
                    self.assertTrue(records, "no access_denied record for %s %s %s"
                                    % (user, method, path))
                else:
                    self.assertNotEqual(403, status, (user, method, path, body))
        status, _, _ = self.orthanc.request("GET", "/cloud-ingest/status", auth=False)
        self.assertEqual(401, status)  # Orthanc's own authentication comes first

    def test_jobs_of_sends_need_operator_and_show_no_dicom_identifier(self):
        """Orthanc lets every user it admits act on any job: the plugin's filter refuses an
        action on a send's job below operator (403, access_denied), audits an allowed cancel
        with the user, and leaves other jobs alone; no job content names the study."""
        # 12 instances, 4 uploads at a time, each 4 s: the send runs for 12 s at least.
        self.sim.faults({"endpoint": "put", "delay_ms": 4000, "count": 1000})
        self.addCleanup(self.sim.delete, "/_sim/faults")
        study = cloudtest.generate(self.tmp, "jobs", series=1, instances=12, size_kb=4,
                                   patient_name="Jobs^Patient")
        for path, _ in study["instances"]:
            self.orthanc.upload_instance(path)
        study_id = cloudtest.orthanc_study_id(self.orthanc, study["study_uid"])

        def live_job():
            jobs = [j for j in self.send_jobs("admin")
                    if j["Content"].get("orthanc_study_id") == study_id
                    and j["State"] == "Paused"]
            return jobs[-1] if jobs else None
        job = self.orthanc.wait_for(live_job, timeout=30, message="the send's live job")

        # Anyone may read /jobs: no job of a send names a study or a patient.
        identifiers = [study["study_uid"], study["patient_id"], "Jobs^Patient",
                       "ACC" + study["study_uid"][-6:], self.study["study_uid"],
                       self.study["patient_id"]]
        identifiers += study["series_uids"] + [uid for _, uid in study["instances"]]
        for user in ("nobody", "admin"):
            text = json.dumps(self.send_jobs(user))
            self.assertIn(study_id, text)
            for identifier in identifiers:
                self.assertNotIn(identifier, text, (user, identifier))

        # Below operator: 403 for each action, audited, and the send goes on.
        for user in ("nobody", "stranger", "vera"):
            for action in ("cancel", "pause", "resume", "resubmit"):
                route = "/jobs/%s/%s" % (job["ID"], action)
                status, _, body = self.as_user(user, "POST", route, {})
                self.assertEqual(403, status, (user, route, body))
                self.assertTrue([r for r in self.orthanc.audit_records()
                                 if r["event"] == "access_denied" and r.get("user") == user
                                 and r.get("route") == route and r.get("method") == "POST"],
                                "no access_denied record for %s %s" % (user, route))
        # Other spellings that Orthanc routes to the same action (measured on 1.10.1).
        for route in ("//jobs/%s/./cancel", "/jobs/x/../%s/cancel/", "/jobs/%s/%%63ancel"):
            status, _, body = self.as_user("nobody", "POST", route % job["ID"], {})
            self.assertEqual(403, status, (route, body))
        time.sleep(1.5)  # more than one pass of the plugin's job refresh (every second)
        self.assertEqual("sending", cloudtest.plugin_entry(self.orthanc, study_id)["state"])
        self.assertEqual("Paused", self.orthanc.get("/jobs/" + job["ID"])["State"])
        self.assertFalse([r for r in self.orthanc.audit_records()
                          if r["event"] == "study_cancelled"
                          and r.get("orthanc_study_id") == study_id])

        # Other jobs stay the users' own: nobody pauses the archive job they started.
        status, _, body = self.as_user("nobody", "POST", "/studies/%s/archive" % study_id,
                                       {"Asynchronous": True})
        self.assertEqual(200, status, body)
        archive = json.loads(body)["ID"]
        status, _, body = self.as_user("nobody", "POST", "/jobs/%s/pause" % archive, {})
        self.assertEqual(200, status, body)

        # An operator's cancel cancels the send, audited with their name.
        status, _, body = self.as_user("otto", "POST", "/jobs/%s/cancel" % job["ID"], {})
        self.assertEqual(200, status, body)

        def cancelled():
            return [r for r in self.orthanc.audit_records() if r["event"] == "study_cancelled"
                    and r.get("orthanc_study_id") == study_id]
        records = self.orthanc.wait_for(cancelled, timeout=20,
                                        message="a study_cancelled record")
        self.assertEqual(1, len(records), records)
        self.assertEqual("otto", records[0].get("user"), records[0])
        self.assertIn(job["ID"], records[0].get("detail", ""))
        self.assertEqual("cancelled", cloudtest.plugin_entry(self.orthanc, study_id)["state"])

    def send_jobs(self, user):
        """Orthanc's CloudIngestSend jobs, expanded, as `user` reads them."""
        status, _, body = self.as_user(user, "GET", "/jobs?expand")
        self.assertEqual(200, status, body)
        return [j for j in json.loads(body) if j.get("Type") == "CloudIngestSend"]

    def test_long_paths_are_refused_and_orthanc_lives(self):
        # RequiredRole ran std::regex over the path before its length was checked: a POST to
        # /studies/<230 characters>/send overflowed the HTTP thread's stack and killed Orthanc.
        for user in ("nobody", "otto"):
            for length in (240, 300, 2000, 60000):
                for action in ("send", "cancel"):
                    path = "/cloud-ingest/studies/%s/%s" % ("a" * length, action)
                    with self.subTest(user=user, length=length, action=action):
                        self.assert_long_path_refused(user, path, length)
        self.assertIsNone(self.orthanc.process.poll(), "Orthanc died")
        status, _, body = self.as_user("otto", "GET", "/cloud-ingest/status")
        self.assertEqual(200, status, body)

    def assert_long_path_refused(self, user, path, length):
        try:
            status, _, body = self.as_user(user, "POST", path, {})
        except (ConnectionResetError, BrokenPipeError, urllib.error.URLError) as refused:
            # Orthanc's HTTP server refuses a request line over 16 KB before the plugin sees it,
            # and closes without reading the rest: the kernel may reset the socket first.
            reset = not isinstance(refused, urllib.error.URLError) or isinstance(
                refused.reason, (ConnectionResetError, BrokenPipeError))
            if length < 16 * 1024 or not reset:
                raise
            return
        if length >= 16 * 1024:
            self.assertEqual(400, status)  # Orthanc's own refusal, no JSON
        elif len(path) - len("/cloud-ingest") > 256:
            self.assertEqual(400, status, body[:200])
            self.assertEqual("path", json.loads(body)["details"]["parameter"])
        else:  # within the bound: the role first, then no such study id
            self.assertEqual(403 if user == "nobody" else 404, status, body[:200])
            self.assertIn("error", json.loads(body))

    def test_me_lists_what_the_user_may_do(self):
        expected = {"vera": ["view"], "otto": ["view", "send"],
                    "admin": ["view", "send", "admin"]}
        for user, can in expected.items():
            status, _, body = self.as_user(user, "GET", "/cloud-ingest/me")
            self.assertEqual(200, status)
            me = json.loads(body)
            self.assertEqual(user, me["user"])
            self.assertEqual(can, me["can"])

    def test_manual_send_is_audited_with_the_operator(self):
        status, _, body = self.as_user("otto", "POST",
                                       "/cloud-ingest/studies/%s/send" % self.study_id, {})
        self.assertEqual(202, status, body)
        self.assertTrue([r for r in self.orthanc.audit_records()
                         if r["event"] == "manual_send" and r.get("user") == "otto"])
        status, _, _ = self.as_user("vera", "POST",
                                    "/cloud-ingest/studies/%s/send" % self.study_id, {})
        self.assertEqual(403, status)
        cloudtest.wait_until_sent(self.orthanc, self.study["study_uid"])

    def test_receipt_is_signed_and_names_every_instance_with_the_stores_etag(self):
        status, _, body = self.as_user("vera", "GET",
                                       "/cloud-ingest/studies/%s/receipt" % self.study_id)
        self.assertEqual(200, status, body)
        receipt = json.loads(body)
        signature = receipt.pop("hmac")
        canonical = json.dumps(receipt, sort_keys=True, separators=(",", ":"),
                               ensure_ascii=False).encode()
        self.assertEqual(hmac.new(AUDIT_KEY.encode(), canonical, hashlib.sha256).hexdigest(),
                         signature)
        self.assertEqual("node-it", receipt["node"])
        self.assertEqual("Instances", receipt["mode"])
        self.assertTrue(receipt["order_id"])
        self.assertLessEqual(receipt["started_at"], receipt["finished_at"])
        stored = cloudtest.stored_md5s(self.orthanc, self.study_id)
        self.assertEqual(stored, {f["sop_instance_uid"]: f["md5"] for f in receipt["files"]})
        self.assertEqual(stored, {f["sop_instance_uid"]: f["etag"] for f in receipt["files"]})
        for f in receipt["files"]:
            self.assertEqual(64, len(f["sha256"]))
        status, _, _ = self.as_user("vera", "GET", "/cloud-ingest/studies/%s/receipt"
                                    % ("0" * 8 + "-" + "0" * 8))
        self.assertEqual(404, status)


class AuditChainTest(cloudtest.SharedServersTestCase):
    """The chain on a real log: verify, tampered copies, rotation, a cut tail, a crash
    between a line and its stored head, and a deleted file."""

    ingest = {"AuditKey": AUDIT_KEY, "NodeName": "node-it"}

    @classmethod
    def prepare(cls):
        study = cloudtest.generate(cls.tmp, series=1, instances=4, size_kb=8)
        for path, _ in study["instances"]:
            cls.orthanc.upload_instance(path)
        cloudtest.wait_until_sent(cls.orthanc, study["study_uid"])
        cls.key_file = os.path.join(cls.tmp, "key")
        with open(cls.key_file, "w") as f:
            f.write(AUDIT_KEY + "\n")

    def copy_lines(self):
        with open(self.orthanc.audit_log_path) as f:
            return f.read().splitlines()

    def verify_copy(self, lines, *extra):
        path = os.path.join(self.tmp, "copy.jsonl")
        with open(path, "w") as f:
            f.write("".join(line + "\n" for line in lines))
        return run_verifier("--key-file", self.key_file, *(list(extra) + [path]))

    def test_1_chain_fields_and_untouched_log_verify(self):
        records = self.orthanc.audit_records()
        self.assertEqual(list(range(1, len(records) + 1)), [r["seq"] for r in records])
        self.assertTrue(all(r["node"] == "node-it" and len(r["hmac"]) == 64 for r in records))
        self.assertEqual("0" * 64, records[0]["prev_sha256"])
        answer = self.orthanc.get("/cloud-ingest/audit/verify")
        self.assertTrue(answer["ok"], answer)
        self.assertEqual(len(records), answer["records"])
        self.assertIsNone(answer["first_bad_seq"])
        code, result = self.verify_copy(self.copy_lines())
        self.assertEqual((0, True), (code, result["ok"]), result)

    def test_2_each_tampering_is_found_by_the_offline_verifier(self):
        lines = self.copy_lines()
        self.assertGreaterEqual(len(lines), 6)
        edited = list(lines)
        edited[2] = edited[2].replace('"event":"', '"event":"x', 1)
        forged = list(lines)
        forged[3] = lines[3][:lines[3].rfind(',"hmac":"')] + ',"hmac":"' + "ab" * 32 + '"}'
        cases = {
            "edited": (edited, 3, []),
            "inserted": (lines[:3] + [lines[1]] + lines[3:], 4, []),
            "deleted": (lines[:2] + lines[3:], 3, []),
            "swapped": (lines[:1] + [lines[2], lines[1]] + lines[3:], 2, []),
            "forged hmac": (forged, 4, []),
            "cut tail": (lines[:-2], len(lines) - 1, ["--head-seq", str(len(lines))]),
            "cut head": (lines[2:], 2, []),  # no predecessor file given
        }
        for name, (tampered, first_bad, extra) in cases.items():
            code, result = self.verify_copy(tampered, *extra)
            self.assertEqual(1, code, (name, result))
            self.assertEqual(first_bad, result["first_bad_seq"], (name, result))

    def test_3_rotation_continues_the_chain_across_files(self):
        path = self.orthanc.audit_log_path
        shutil.move(path, path + ".1")
        self.orthanc.post("/cloud-ingest/test-connection")  # writes token_issued
        with open(path) as f:
            first = json.loads(f.readline())
        with open(path + ".1") as f:
            previous = f.read().splitlines()
        self.assertEqual(json.loads(previous[-1])["seq"] + 1, first["seq"])
        answer = self.orthanc.get("/cloud-ingest/audit/verify")
        self.assertTrue(answer["ok"], answer)
        code, result = run_verifier("--key-file", self.key_file, path + ".1", path)
        self.assertEqual((0, True), (code, result["ok"]), result)

    def test_4_a_cut_tail_of_the_live_log_is_found_by_the_plugin(self):
        self.orthanc.post("/cloud-ingest/test-connection")
        self.orthanc.post("/cloud-ingest/test-connection")
        path = self.orthanc.audit_log_path
        with open(path) as f:
            lines = f.read().splitlines()
        last = json.loads(lines[-1])["seq"]
        with open(path, "r+") as f:
            f.truncate(len("".join(line + "\n" for line in lines[:-1])))
        answer = self.orthanc.get("/cloud-ingest/audit/verify")
        self.assertFalse(answer["ok"], answer)
        self.assertEqual(last, answer["first_bad_seq"], answer)
        with open(path, "a") as f:  # put back, for the tests after this one
            f.write(lines[-1] + "\n")
        answer = self.orthanc.get("/cloud-ingest/audit/verify")
        self.assertTrue(answer["ok"], answer)

    def test_5_a_kill_between_a_line_and_its_stored_head_leaves_the_chain_whole(self):
        kill_after = self.orthanc.audit_records()[-1]["seq"] + 1
        self.orthanc.env["CLOUD_INGEST_TEST_KILL_AFTER_AUDIT_SEQ"] = str(kill_after)
        try:
            self.orthanc.restart()
            with contextlib.suppress(OSError, http.client.HTTPException):
                self.orthanc.post("/cloud-ingest/test-connection")  # writes token_issued
        except harness.OrthancExited:
            pass  # a record written while starting was the one
        finally:
            del self.orthanc.env["CLOUD_INGEST_TEST_KILL_AFTER_AUDIT_SEQ"]
        self.orthanc.process.wait(30)
        self.assertEqual(-9, self.orthanc.process.returncode)
        self.assertEqual(kill_after, self.orthanc.audit_records()[-1]["seq"])
        self.orthanc.restart()
        self.orthanc.post("/cloud-ingest/test-connection")
        seqs = [r["seq"] for r in self.orthanc.audit_records()]
        self.assertEqual(list(range(seqs[0], seqs[0] + len(seqs))), seqs)
        self.assertGreater(seqs[-1], kill_after)
        answer = self.orthanc.get("/cloud-ingest/audit/verify")
        self.assertTrue(answer["ok"], answer)

    def test_6_a_deleted_file_is_missing_and_the_file_after_it_not_intact(self):
        path = self.orthanc.audit_log_path
        last = self.orthanc.audit_records()[-1]["seq"]
        os.remove(path)
        answer = self.orthanc.get("/cloud-ingest/audit/verify")
        self.assertFalse(answer["ok"], answer)
        self.assertIn("missing (deleted?)", answer["reason"])
        self.assertFalse(os.path.exists(path), "verify created the file")
        self.orthanc.post("/cloud-ingest/test-connection")
        records = self.orthanc.audit_records()
        self.assertEqual(last + 1, records[0]["seq"])
        answer = self.orthanc.get("/cloud-ingest/audit/verify")
        self.assertFalse(answer["ok"], answer)
        self.assertEqual(last, answer["first_bad_seq"], answer)
        self.assertIn("deleted, truncated or rotated away", answer["reason"])
        self.assertEqual(1, run_verifier("--key-file", self.key_file, path)[0])
        self.assertEqual(0, run_verifier("--key-file", self.key_file, "--partial", path)[0])


class PermissionsNeedAuthenticationTest(unittest.TestCase):
    def test_permissions_with_authentication_off_stop_orthanc(self):
        orthanc = harness.Orthanc(
            cloud_ingest={"Enable": False, "Permissions": {"Users": {"a": "admin"}}},
            authentication=False)
        try:
            code, log = orthanc.start_expect_failure()
        finally:
            orthanc.close()
        self.assertNotEqual(0, code)
        lines = [line for line in log.splitlines() if "CloudIngest.Permissions: " in line]
        self.assertEqual(1, len(lines), log[-3000:])
        self.assertIn("AuthenticationEnabled", lines[0])


if __name__ == "__main__":
    unittest.main()
