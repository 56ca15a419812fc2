"""The /cloud-ingest/ REST routes (docs/REFERENCE.md, REST API), against a real Orthanc 1.10
with the plugin and the cloud simulator: shapes, filters, manual send and cancel, order metadata,
test-connection, the web page, wrong methods, missing credentials, unknown routes, and that
no answer ever holds the client secret or an access token."""

import base64
import datetime
import hashlib
import http.client
import json
import re
import time
import unittest
import urllib.error
import uuid

import cloudtest
import harness

UNKNOWN_STUDY = "00000000-00000000-00000000-00000000-00000000"  # Orthanc's ID shape
STATES = ("queued", "sending", "sent", "failed", "cancelled")
TOKEN_LIKE = re.compile(r"[A-Za-z0-9_-]{43,}")  # the simulator's tokens: 32 bytes, base64url


def parse_iso(text):
    """A UTC ISO 8601 time such as 2026-11-28T17:04:26.123Z, as a Unix time."""
    match = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?Z", text)
    assert match, "not an ISO 8601 UTC time: %r" % text
    moment = datetime.datetime.strptime(match.group(1), "%Y-%m-%dT%H:%M:%S")
    return moment.replace(tzinfo=datetime.timezone.utc).timestamp() + float(match.group(2) or 0)


def instance_sizes(orthanc, study_id):
    """Bytes of each file Orthanc stored for a study (what the plugin uploads)."""
    sizes = []
    for instance in orthanc.get("/studies/%s/instances" % study_id):
        status, _, body = orthanc.request("GET", "/instances/%s/file" % instance["ID"])
        assert status == 200
        sizes.append(len(body))
    return sizes


class RoutesTest(cloudtest.SharedServersTestCase):
    """One simulator and one Orthanc for the class; two studies are sent before any test."""

    orthanc_options = {"stable_age": 1}

    @classmethod
    def prepare(cls):
        cls.study_a = cls._send_study("a", instances=3)
        cls.study_b = cls._send_study("b", instances=2)
        # What the plugin reports while exactly these two studies were sent.
        cls.status_after_two = cls.orthanc.get("/cloud-ingest/status")

    @classmethod
    def _send_study(cls, name, instances, size_kb=6):
        """Uploads a generated study through Orthanc's REST API and waits until it is sent."""
        study = cloudtest.generate(cls.tmp, name, series=1, instances=instances,
                                   size_kb=size_kb, patient_name="Route^" + name.upper())
        for path, _ in study["instances"]:
            cls.orthanc.upload_instance(path)
        entry = cloudtest.wait_until_sent(cls.orthanc, study["study_uid"], timeout=60)
        study["id"] = entry["orthanc_id"]
        study["sizes"] = instance_sizes(cls.orthanc, study["id"])
        return study

    # ------------------------------------------------------------------ helpers

    def token_fingerprints(self):
        """The simulator's fingerprints (sha256 prefix) of every access token it issued."""
        return {e["token"] for e in self.sim.events()
                if isinstance(e, dict) and e.get("type") == "token_issued"
                and e.get("token")}

    def assert_no_secret(self, raw, where, extra_secrets=()):
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        # assertFalse, not assertNotIn: a failure must not print the secret either.
        for secret in (self.sim.client_secret,) + tuple(extra_secrets):
            self.assertFalse(secret in text, "the client secret is in the answer of " + where)
        fingerprints = self.token_fingerprints()
        for run in TOKEN_LIKE.findall(text):
            for start in range(len(run) - 42):  # every 43-character window of the run
                window = run[start:start + 43]
                self.assertFalse(hashlib.sha256(window.encode()).hexdigest()[:12] in fingerprints,
                                 "an access token is in the answer of " + where)
        self.assertNotIn("access_token", text, where)
        self.assertNotIn("Bearer ", text, where)

    def call(self, method, path, body=None, orthanc=None, extra_secrets=(), **kwargs):
        """(status, headers, decoded body); every answer is checked for secrets and tokens."""
        orthanc = orthanc or self.orthanc
        status, headers, raw = orthanc.request(method, path, body, **kwargs)
        self.assert_no_secret(raw, "%s %s" % (method, path), extra_secrets)
        self.assert_no_secret(json.dumps(headers), "%s %s (headers)" % (method, path),
                              extra_secrets)
        return status, headers, harness.decode_body(headers, raw)

    def ok(self, method, path, body=None, expect=200, **kwargs):
        status, headers, answer = self.call(method, path, body, **kwargs)
        self.assertEqual(expect, status, "%s %s -> %s %r" % (method, path, status, answer))
        self.assertTrue(harness.plugin_json_type_ok(status, headers), headers)
        return answer

    def json_error(self, method, path, body=None, status=400, **kwargs):
        """Asserts a JSON error {"error": "...", "details": ...} with that status."""
        got, headers, answer = self.call(method, path, body, **kwargs)
        self.assertEqual(status, got, "%s %s -> %s %r" % (method, path, got, answer))
        self.assertTrue(harness.plugin_json_type_ok(got, headers),
                        "%s %s: the error is not JSON: %r" % (method, path, headers))
        self.assertIsInstance(answer, dict)
        self.assertIsInstance(answer.get("error"), str)
        self.assertTrue(answer["error"])
        self.assertIn("details", answer)
        return answer

    def study(self, study_id):
        return self.ok("GET", "/cloud-ingest/studies/" + study_id)

    def wait_idle(self, timeout=60):
        """Waits until nothing is queued or being sent."""
        def idle():
            queue = self.orthanc.get("/cloud-ingest/status")["queue"]
            return queue["queued"] == 0 and queue["sending"] == 0
        self.orthanc.wait_for(idle, timeout=timeout, interval=0.2, message="an idle queue")

    def sim_snapshot(self):
        return self.sim.get("/_sim/studies")

    # ------------------------------------------------------------------ GET /status

    def test_status_shape_after_two_studies(self):
        status = self.status_after_two
        self.assert_no_secret(json.dumps(status), "GET /cloud-ingest/status")
        plugin = self.orthanc.get("/plugins/cloud-ingest")
        self.assertEqual(plugin["Version"], status["version"])
        self.assertTrue(status["version"])
        self.assertIs(True, status["enabled"])
        self.assertEqual(self.sim.url, status["url"].rstrip("/"))

        token = status["token"]
        self.assertIs(True, token["valid"])
        valid_until = parse_iso(token["valid_until"])
        self.assertGreater(valid_until, time.time())
        self.assertLess(valid_until, time.time() + 2 * 3600)  # the simulator's TTL is 1 h
        self.assertNotIn("access_token", token)
        self.assertNotIn("token", {k.lower() for k in token})

        self.assertEqual({"queued": 0, "sending": 0, "sent": 2, "failed": 0, "cancelled": 0},
                         {state: status["queue"][state] for state in STATES})
        totals = status["totals"]
        sizes = self.study_a["sizes"] + self.study_b["sizes"]
        self.assertEqual(2, totals["studies_sent"])
        self.assertEqual(5, totals["instances_sent"])
        self.assertEqual(sum(sizes), totals["bytes_sent"])
        self.assertEqual(0, totals["failures"])

    def test_status_now_matches_the_list(self):
        self.wait_idle()
        status = self.ok("GET", "/cloud-ingest/status")
        listed = self.ok("GET", "/cloud-ingest/studies?limit=1000")["studies"]
        for state in STATES:
            self.assertEqual(len([s for s in listed if s["state"] == state]),
                             status["queue"][state], state)

    # ------------------------------------------------------------------ GET /studies

    def test_list_is_newest_first_with_the_contract_fields(self):
        self.wait_idle()
        listed = self.ok("GET", "/cloud-ingest/studies")["studies"]
        ids = [s["orthanc_id"] for s in listed]
        self.assertIn(self.study_a["id"], ids)
        self.assertIn(self.study_b["id"], ids)
        times = [parse_iso(s["updated_at"]) for s in listed]
        self.assertEqual(sorted(times, reverse=True), times, "not newest first")
        self.assertGreater(len(set(times)), 1, "the ordering check needs distinct times")
        for entry in listed:
            for key in ("orthanc_id", "study_instance_uid", "order_id", "state",
                        "instances_sent", "instances_total", "bytes_sent", "attempts",
                        "last_error", "created_at", "updated_at"):
                self.assertIn(key, entry)
            self.assertIn(entry["state"], STATES)

    def test_list_state_filter(self):
        self.wait_idle()
        sent = self.ok("GET", "/cloud-ingest/studies?state=sent")["studies"]
        self.assertTrue(sent)
        self.assertEqual({"sent"}, {s["state"] for s in sent})
        ids = {s["orthanc_id"] for s in sent}
        self.assertTrue({self.study_a["id"], self.study_b["id"]} <= ids)
        failed = self.ok("GET", "/cloud-ingest/studies?state=failed")["studies"]
        self.assertEqual([], [s for s in failed if s["state"] != "failed"])
        self.assertNotIn(self.study_a["id"], {s["orthanc_id"] for s in failed})

    def test_list_limit_and_offset(self):
        self.wait_idle()
        full = [s["orthanc_id"] for s in
                self.ok("GET", "/cloud-ingest/studies?limit=1000")["studies"]]
        self.assertGreaterEqual(len(full), 2)
        first = self.ok("GET", "/cloud-ingest/studies?limit=1")
        self.assertEqual([full[0]], [s["orthanc_id"] for s in first["studies"]])
        second = self.ok("GET", "/cloud-ingest/studies?limit=1&offset=1")["studies"]
        self.assertEqual([full[1]], [s["orthanc_id"] for s in second])
        beyond = self.ok("GET", "/cloud-ingest/studies?offset=%d" % len(full))["studies"]
        self.assertEqual([], beyond)

    def test_list_since_filter(self):
        self.wait_idle()
        full = self.ok("GET", "/cloud-ingest/studies?limit=1000")["studies"]
        newest = max(parse_iso(s["updated_at"]) for s in full)
        oldest = min(parse_iso(s["updated_at"]) for s in full)
        # Unix seconds: after the newest update, nothing; from the oldest, everything.
        later = self.ok("GET", "/cloud-ingest/studies?since=%d" % (int(newest) + 2))["studies"]
        self.assertEqual([], later)
        everything = self.ok("GET", "/cloud-ingest/studies?limit=1000&since=%d"
                             % int(oldest))["studies"]
        self.assertEqual([s["orthanc_id"] for s in full],
                         [s["orthanc_id"] for s in everything])
        # ISO 8601: a time between two studies' updates splits the list.
        if int(newest) > int(oldest):
            cut = datetime.datetime.fromtimestamp(int(newest), datetime.timezone.utc)
            iso = cut.strftime("%Y-%m-%dT%H:%M:%SZ")
            part = self.ok("GET", "/cloud-ingest/studies?limit=1000&since=" + iso)["studies"]
            expected = [s["orthanc_id"] for s in full if parse_iso(s["updated_at"]) >= int(newest)]
            self.assertEqual(expected, [s["orthanc_id"] for s in part])
            self.assertLess(len(part), len(full))
        iso_old = "2000-01-01T00:00:00Z"
        self.assertEqual(len(full), len(self.ok(
            "GET", "/cloud-ingest/studies?limit=1000&since=" + iso_old)["studies"]))

    def test_list_bad_parameters_are_400_json(self):
        for query in ("state=bogus", "state=SENTX", "limit=-1", "limit=abc", "limit=1.5",
                      "offset=-5", "offset=x", "since=yesterday", "since=-3"):
            with self.subTest(query=query):
                self.json_error("GET", "/cloud-ingest/studies?" + query, status=400)

    def test_huge_query_values_are_400_before_any_parsing(self):
        # A number whose fraction runs on: std::regex recursed once per character on it, and
        # 1000 characters were enough to overflow the HTTP thread's stack and kill Orthanc.
        # Orthanc's HTTP server passes a request line of about 16 KB at most to the plugin.
        long_value = "1." + "0" * (10 * 1024)
        for key in ("since", "state", "limit", "offset"):
            with self.subTest(key=key):
                started = time.monotonic()
                answer = self.json_error("GET", "/cloud-ingest/studies?%s=%s" % (key, long_value),
                                         status=400)
                self.assertLess(time.monotonic() - started, 5)
                self.assertIn(key, answer["error"])
                self.assertEqual(key, answer["details"]["parameter"])
        # 100 KB: Orthanc's HTTP server refuses it (400, not JSON) before the plugin sees it. It
        # closes without reading the rest, so the kernel may reset the socket before the client
        # reads the 400: a reset is the same refusal.
        started = time.monotonic()
        try:
            status, _, _ = self.orthanc.request("GET", "/cloud-ingest/studies?since=1."
                                                + "0" * (100 * 1024))
        except (ConnectionResetError, BrokenPipeError, urllib.error.URLError) as refused:
            if isinstance(refused, urllib.error.URLError) and not isinstance(
                    refused.reason, (ConnectionResetError, BrokenPipeError)):
                raise
            status = 400
        self.assertEqual(400, status)
        self.assertLess(time.monotonic() - started, 5)
        # Orthanc and the plugin still answer.
        self.ok("GET", "/cloud-ingest/studies?since=1000000000.5")

    # ------------------------------------------------------------------ GET /studies/{id}

    def test_one_study_with_its_history(self):
        entry = self.study(self.study_b["id"])
        self.assertEqual(self.study_b["id"], entry["orthanc_id"])
        self.assertEqual(self.study_b["study_uid"], entry["study_instance_uid"])
        self.assertEqual("sent", entry["state"])
        self.assertEqual(4, uuid.UUID(entry["order_id"]).version)
        self.assertEqual(2, entry["instances_sent"])
        self.assertEqual(2, entry["instances_total"])
        self.assertEqual(sum(self.study_b["sizes"]), entry["bytes_sent"])
        self.assertGreaterEqual(entry["attempts"], 1)
        self.assertIsNone(entry["last_error"])
        created, updated = parse_iso(entry["created_at"]), parse_iso(entry["updated_at"])
        self.assertLessEqual(created, updated)
        self.assertLessEqual(updated, time.time() + 1)
        self.assertIn(entry["order_id"], self.sim.studies()[self.study_b["study_uid"]]["orders"])

        history = entry["history"]
        self.assertIsInstance(history, list)
        events = [h["event"] for h in history]
        self.assertIn("queued", events)
        self.assertIn("sent", events)
        for h in history:
            self.assertLessEqual({"time", "attempt", "event", "detail"}, set(h))
            parse_iso(h["time"])

    def test_unknown_study_is_404_json(self):
        self.json_error("GET", "/cloud-ingest/studies/" + UNKNOWN_STUDY, status=404)

    # ------------------------------------------------------------------ POST .../send

    def test_manual_send_with_extra_metadata(self):
        self.wait_idle()
        study = self.study_a
        before = self.study(study["id"])
        old_order = before["order_id"]
        audit_before = len(self.orthanc.audit_records())

        answer = self.ok("POST", "/cloud-ingest/studies/%s/send" % study["id"],
                         {"metadata": {"extra_key": "v"}}, expect=202)
        self.assertEqual(study["id"], answer["orthanc_id"])
        self.assertIn(answer["state"], ("queued", "sending"))
        self.assertEqual("manual", answer["trigger"])
        self.assertEqual("admin", answer["requested_by"])

        def resent():
            entry = self.study(study["id"])
            return entry if entry["state"] == "sent" and entry["order_id"] != old_order else None
        entry = self.orthanc.wait_for(resent, timeout=60, message="the manual resend")
        self.assertEqual(3, entry["instances_sent"])

        snapshot = self.sim_snapshot()
        new_order = snapshot["orders"][entry["order_id"]]
        self.assertEqual("v", new_order["metadata"].get("extra_key"))
        self.assertEqual(study["study_uid"], new_order["metadata"]["study_instance_uid"])
        self.assertNotIn("extra_key", snapshot["orders"][old_order]["metadata"])
        received = self.sim.received_instances(study["study_uid"])
        self.assertEqual({sop for _, sop in study["instances"]}, received)

        manual = [r for r in self.orthanc.audit_records()[audit_before:]
                  if r.get("event") == "manual_send"]
        self.assertEqual(1, len(manual), manual)
        self.assertEqual(study["id"], manual[0].get("orthanc_study_id"))
        self.assertEqual("admin", manual[0].get("user"))
        with open(self.orthanc.audit_log_path) as f:
            self.assert_no_secret(f.read(), "the audit log")

    def test_send_errors(self):
        sid = self.study_b["id"]
        self.json_error("POST", "/cloud-ingest/studies/%s/send" % UNKNOWN_STUDY, {}, status=404)
        self.json_error("POST", "/cloud-ingest/studies/%s/send" % sid, "{\"metadata\": {",
                        status=400, headers={"Content-Type": "application/json"})
        self.json_error("POST", "/cloud-ingest/studies/%s/send" % sid, "not json at all",
                        status=400)
        self.json_error("POST", "/cloud-ingest/studies/%s/send" % sid,
                        {"metadata": {}, "priority": "high"}, status=400)
        self.json_error("POST", "/cloud-ingest/studies/%s/send" % sid, {"metadata": "x"},
                        status=400)
        self.json_error("POST", "/cloud-ingest/studies/%s/send" % sid, [1, 2], status=400)
        # None of these queued anything.
        self.assertEqual("sent", self.study(sid)["state"])
        self.assertEqual(1, len(self.sim.studies()[self.study_b["study_uid"]]["orders"]))

    # ------------------------------------------------------------------ POST .../cancel

    def test_cancel_a_sending_study_stops_its_uploads(self):
        self.wait_idle()
        total = 16
        study = cloudtest.generate(self.tmp, "slow", series=1, instances=total,
                                   size_kb=4, patient_name="Slow^Cancel")
        # Every PUT waits 1.5 s in the simulator, so the study stays "sending" for a while.
        self.sim.faults({"endpoint": "put", "delay_ms": 1500, "count": 200})
        self.addCleanup(lambda: self.sim.delete("/_sim/faults"))
        for path, _ in study["instances"]:
            self.orthanc.upload_instance(path)
        study_id = cloudtest.orthanc_study_id(self.orthanc, study["study_uid"])

        # Cancel in the middle: some instances are in the cloud, others not yet.
        def partly_sent():
            status, _, body = self.orthanc.request("GET", "/cloud-ingest/studies/" + study_id)
            entry = json.loads(body) if status == 200 else {}
            return entry.get("state") == "sending" and entry["instances_sent"] >= 1
        self.orthanc.wait_for(partly_sent, timeout=30, interval=0.05,
                              message="sending with an instance uploaded")

        answer = self.ok("POST", "/cloud-ingest/studies/%s/cancel" % study_id)
        self.assertEqual(study_id, answer["orthanc_id"])
        self.assertEqual("cancelled", answer["state"])

        # In-flight PUTs may finish (each takes 1.5 s); after that, nothing more moves.
        def uploads():
            events = self.sim.events()
            return (len([e for e in events if e.get("type") == "url_issued"]),
                    len(self.sim.received_instances(study["study_uid"])))
        last, still_since = uploads(), time.monotonic()
        deadline = time.monotonic() + 20
        while time.monotonic() - still_since < 3.5:
            self.assertLess(time.monotonic(), deadline, "uploads never stopped: %r" % (last,))
            time.sleep(0.25)
            now = uploads()
            if now != last:
                last, still_since = now, time.monotonic()
        received = last[1]
        self.assertGreaterEqual(received, 1)
        self.assertLess(received, total, "every instance was uploaded despite the cancel")

        entry = self.study(study_id)
        self.assertEqual("cancelled", entry["state"])
        self.assertIn("cancelled", [h["event"] for h in entry["history"]])
        self.assertEqual(received, entry["instances_sent"])
        if entry["order_id"]:
            order = self.sim_snapshot()["orders"][entry["order_id"]]
            self.assertNotEqual("complete", order["metadata"].get("upload_status"))
        self.assertEqual(0, self.ok("GET", "/cloud-ingest/status")["queue"]["sending"])

        # A cancelled study cannot be cancelled again.
        self.json_error("POST", "/cloud-ingest/studies/%s/cancel" % study_id, status=409)

    def test_cancel_a_sent_study_is_409_and_unknown_is_404(self):
        self.wait_idle()
        answer = self.json_error("POST", "/cloud-ingest/studies/%s/cancel" % self.study_b["id"],
                                 status=409)
        self.assertIn("sent", answer["error"])
        self.assertEqual("sent", self.study(self.study_b["id"])["state"])
        self.json_error("POST", "/cloud-ingest/studies/%s/cancel" % UNKNOWN_STUDY, status=404)

    # ------------------------------------------------------------------ POST /orders/{id}/metadata

    def test_order_metadata_is_forwarded_to_add_metadata(self):
        self.wait_idle()
        entry = self.study(self.study_b["id"])
        order_id = entry["order_id"]
        answer = self.ok("POST", "/cloud-ingest/orders/%s/metadata" % order_id,
                         {"note_key": "n1", "reviewed": "yes"})
        self.assertEqual(order_id, answer.get("order_id"))
        cloud = self.sim.studies()[self.study_b["study_uid"]]
        self.assertEqual("n1", cloud["metadata"].get("note_key"))
        self.assertEqual("yes", cloud["metadata"].get("reviewed"))
        patched = [e for e in self.sim.events()
                   if e.get("type") == "metadata_added"
                   and e.get("order_id") == order_id and "note_key" in e.get("keys", [])]
        self.assertEqual(1, len(patched))

    def test_order_metadata_errors(self):
        self.json_error("POST", "/cloud-ingest/orders/not-a-uuid/metadata", {"k": "v"},
                        status=400)
        self.json_error("POST", "/cloud-ingest/orders/%s/metadata"
                        % str(uuid.uuid1()), {"k": "v"}, status=400)  # a UUID, not v4
        order_id = self.study(self.study_b["id"])["order_id"]
        self.json_error("POST", "/cloud-ingest/orders/%s/metadata" % order_id, "{oops",
                        status=400)
        # An order the service does not know: the service's refusal is passed on.
        got, headers, answer = self.call("POST", "/cloud-ingest/orders/%s/metadata"
                                         % str(uuid.uuid4()), {"k": "v"})
        self.assertGreaterEqual(got, 400)
        self.assertIsInstance(answer, dict)
        self.assertIn("error", answer)

    # ------------------------------------------------------------------ POST /test-connection

    def test_test_connection_with_good_credentials(self):
        answer = self.ok("POST", "/cloud-ingest/test-connection")
        self.assertIs(True, answer["ok"])
        self.assertEqual(self.sim.url, answer["url"].rstrip("/"))

    def test_test_connection_with_a_wrong_secret(self):
        wrong = "wrong-" + uuid.uuid4().hex
        section = cloudtest.ingest_section(self.sim, ClientSecret=wrong, AutoSend=False)
        with harness.Orthanc(cloud_ingest=section) as other:
            status, _, answer = self.call("POST", "/cloud-ingest/test-connection",
                                          orthanc=other, extra_secrets=(wrong,))
            self.assertEqual(200, status, answer)
            self.assertIs(False, answer["ok"])
            reasons = [v for k, v in answer.items() if k in ("error", "reason", "details")]
            self.assertTrue(any(isinstance(r, str) and r for r in reasons),
                            "no reason given: %r" % answer)
            status, _, body = self.call("GET", "/cloud-ingest/status", orthanc=other,
                                        extra_secrets=(wrong,))
            self.assertEqual(200, status)
            self.assertIs(False, body["token"]["valid"])
            self.assertFalse(wrong in other.log_text(), "the wrong secret is in Orthanc's log")

    # ------------------------------------------------------------------ POSTs must be JSON

    def raw_post(self, path, body, content_type):
        """(status, headers, decoded body) of a POST sent with exactly that Content-Type (None:
        no Content-Type header at all, which urllib cannot do)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.orthanc.http_port, timeout=30)
        try:
            headers = {"Authorization": "Basic " + base64.b64encode(
                ("%s:%s" % self.orthanc.auth).encode()).decode()}
            if content_type is not None:
                headers["Content-Type"] = content_type
            connection.request("POST", path, body=body.encode(), headers=headers)
            response = connection.getresponse()
            raw = response.read()
            headers = {k.lower(): v for k, v in response.getheaders()}
        finally:
            connection.close()
        return response.status, headers, harness.decode_body(headers, raw)

    def test_posts_that_are_not_json_are_415_and_change_nothing(self):
        """A cross-site page can POST text/plain, urlencoded or multipart form data without a
        CORS preflight: no POST route acts on one."""
        self.wait_idle()
        sid, uid = self.study_b["id"], self.study_b["study_uid"]
        order_id = self.study(sid)["order_id"]
        orders_before = list(self.sim.studies()[uid]["orders"])
        audit_before = len(self.orthanc.audit_records())
        events_before = len(self.sim.events())
        injected = json.dumps({"metadata": {"injected_key": "x"}, "injected_key": "x"})
        for path in ("/cloud-ingest/studies/%s/send" % sid,
                     "/cloud-ingest/studies/%s/cancel" % sid,
                     "/cloud-ingest/orders/%s/metadata" % order_id,
                     "/cloud-ingest/test-connection"):
            for content_type, body in (("text/plain", injected),
                                       ("text/plain; charset=utf-8", injected),
                                       ("application/x-www-form-urlencoded", "injected_key=x"),
                                       (None, injected),
                                       (None, "")):
                with self.subTest(path=path, content_type=content_type, body=body[:10]):
                    status, headers, answer = self.raw_post(path, body, content_type)
                    self.assertEqual(415, status, answer)
                    self.assertTrue(harness.plugin_json_type_ok(status, headers), headers)
                    self.assertIsInstance(answer, dict)
                    self.assertIn("application/json", answer.get("error", ""))
                    self.assertIn("details", answer)
            # Orthanc would hand each part of a multipart form to the route with the part's
            # own headers (a JSON part passes) and answer 200 whatever the route said, so the
            # plugin's request filter refuses such a POST first (403; Orthanc adds no body).
            part = ('--b\r\nContent-Disposition: form-data; name="a"; filename="a.json"\r\n'
                    'Content-Type: application/json\r\n\r\n%s\r\n--b--\r\n' % injected)
            for prefix in ("", "/"):
                with self.subTest(path=prefix + path, content_type="multipart/form-data"):
                    status, _, answer = self.raw_post(prefix + path, part,
                                                      "multipart/form-data; boundary=b")
                    self.assertEqual(403, status, answer)
        # What a browser asks before a cross-site JSON POST: nothing allows it.
        for path in ("/cloud-ingest/test-connection", "/cloud-ingest/studies/%s/send" % sid):
            with self.subTest(path=path, method="OPTIONS"):
                status, headers, _ = self.orthanc.request(
                    "OPTIONS", path, headers={"Origin": "http://elsewhere.example",
                                              "Access-Control-Request-Method": "POST",
                                              "Access-Control-Request-Headers": "content-type"})
                self.assertFalse(200 <= status < 300, status)
                self.assertEqual([], [k for k in headers if k.startswith("access-control-")])
        # Nothing was queued, cancelled, forwarded or audited.
        entry = self.study(sid)
        self.assertEqual("sent", entry["state"])
        self.assertEqual(order_id, entry["order_id"])
        self.assertEqual(orders_before, self.sim.studies()[uid]["orders"])
        self.assertNotIn("injected_key", self.sim.studies()[uid]["metadata"])
        self.assertEqual([], [e for e in self.sim.events()[events_before:]
                              if e.get("type") in ("metadata_added", "order_created")])
        self.assertEqual([], [r for r in self.orthanc.audit_records()[audit_before:]
                              if r.get("event") in ("manual_send", "metadata_added")])

    def test_json_posts_with_an_empty_body_are_an_empty_object(self):
        self.wait_idle()
        order_id = self.study(self.study_b["id"])["order_id"]
        status, _, answer = self.raw_post("/cloud-ingest/orders/%s/metadata" % order_id, "",
                                          "Application/JSON; charset=UTF-8")
        self.assertEqual(200, status, answer)
        self.assertEqual(order_id, answer["order_id"])
        status, _, answer = self.raw_post("/cloud-ingest/test-connection", "",
                                          "application/json")
        self.assertEqual(200, status, answer)
        self.assertIs(True, answer["ok"])
        self.assertEqual("sent", self.study(self.study_b["id"])["state"])

        study = self.study_a
        old_order = self.study(study["id"])["order_id"]
        status, _, answer = self.raw_post("/cloud-ingest/studies/%s/send" % study["id"], "",
                                          "application/json")
        self.assertEqual(202, status, answer)
        self.assertEqual("manual", answer["trigger"])
        self.orthanc.wait_for(
            lambda: (lambda e: e if e["state"] == "sent" and e["order_id"] != old_order
                     else None)(self.study(study["id"])),
            timeout=60, message="the resend with an empty JSON body")

    # ------------------------------------------------------------------ GET /app/

    def test_app_page_at_the_contract_address(self):
        # As a browser would: redirects are followed. Orthanc drops a trailing slash before
        # the plugin sees the path, so both spellings must lead to the page.
        for path in ("/cloud-ingest/app/", "/cloud-ingest/app"):
            with self.subTest(path=path):
                status, headers, body = self.call("GET", path)
                self.assertEqual(200, status, "GET %s -> %s %r" % (path, status, body))
                self.assertTrue(headers.get("content-type", "").startswith("text/html"))
                self.assertIn("default-src", headers.get("content-security-policy", ""))
                self.assertIn(b"<html", body.lower())

    def test_app_index_has_html_type_and_csp(self):
        status, headers, body = self.call("GET", "/cloud-ingest/app/index.html")
        self.assertEqual(200, status)
        self.assertTrue(headers.get("content-type", "").startswith("text/html"))
        csp = headers.get("content-security-policy", "")
        self.assertIn("default-src", csp)
        self.assertIn(b"<html", body.lower())
        self.json_error("GET", "/cloud-ingest/app/no-such-file.js", status=404)

    # ------------------------------------------------------------------ methods, auth, routes

    def test_wrong_methods_are_405(self):
        sid = self.study_b["id"]
        for method, path, allowed in (
                ("GET", "/cloud-ingest/studies/%s/send" % sid, "POST"),
                ("GET", "/cloud-ingest/studies/%s/cancel" % sid, "POST"),
                ("DELETE", "/cloud-ingest/status", "GET"),
                ("POST", "/cloud-ingest/status", "GET"),
                ("PUT", "/cloud-ingest/studies", "GET"),
                ("DELETE", "/cloud-ingest/studies/%s" % sid, "GET"),
                ("GET", "/cloud-ingest/test-connection", "POST"),
                ("GET", "/cloud-ingest/orders/%s/metadata" % uuid.uuid4(), "POST")):
            with self.subTest(method=method, path=path):
                status, headers, _ = self.call(method, path, b"" if method != "GET" else None)
                self.assertEqual(405, status)
                self.assertEqual(allowed, headers.get("allow"))
        self.assertEqual("sent", self.study(sid)["state"])

    def test_no_credentials_is_401(self):
        before = len(self.orthanc.audit_records())
        for method, path in (("GET", "/cloud-ingest/status"),
                             ("GET", "/cloud-ingest/studies"),
                             ("GET", "/cloud-ingest/app/index.html"),
                             ("POST", "/cloud-ingest/test-connection"),
                             ("POST", "/cloud-ingest/studies/%s/send" % self.study_b["id"])):
            with self.subTest(method=method, path=path):
                status, _, _ = self.call(method, path, b"" if method == "POST" else None,
                                         auth=False)
                self.assertEqual(401, status)
        status, _, _ = self.call("GET", "/cloud-ingest/status", auth=("admin", "wrong"))
        self.assertEqual(401, status)
        self.assertEqual([], [r for r in self.orthanc.audit_records()[before:]
                              if r.get("event") == "manual_send"])

    def test_unknown_routes_are_404_json(self):
        for path in ("/cloud-ingest/nope", "/cloud-ingest/studies/%s/resend" % self.study_b["id"],
                     "/cloud-ingest/orders", "/cloud-ingest/status/extra"):
            with self.subTest(path=path):
                self.json_error("GET", path, status=404)


if __name__ == "__main__":
    unittest.main()
