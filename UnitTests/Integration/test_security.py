"""Roles on /cloud-ingest/, the tamper-evident audit log and delivery receipts,
against a real Orthanc with several RegisteredUsers and the cloud simulator."""

import hashlib
import hmac
import json
import os
import shutil
import subprocess
import sys
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
    ingest = {"Permissions": {"Users": dict(USERS, admin="admin"), "Default": "none"},
              "AuditKey": AUDIT_KEY, "NodeName": "node-it"}

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
    """The chain on a real log: verify, tampered copies, rotation and a cut tail."""

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
