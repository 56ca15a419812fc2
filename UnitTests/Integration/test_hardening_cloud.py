"""Hardening of the plugin's dealings with the cloud, end to end: headers the upload endpoint
may not set on a PUT, client credentials that only work form-encoded (RFC 6749 section
2.3.1), and test-connection asking the token endpoint every time."""

import os
import unittest

import cloudtest
import harness

# A client id and secret holding what form encoding must protect: ':' (the Basic
# separator), '+' (a space once form-decoded), '%', '&' and a space.
SPECIAL_ID = "site 7:a+b"
SPECIAL_SECRET = "a+b%c:d&e f"


def entry_of(orthanc, study_uid):
    study_id = cloudtest.orthanc_study_id(orthanc, study_uid)
    return orthanc.get("/cloud-ingest/studies/" + study_id) if study_id else None


def events_of(sim, type_):
    return [e for e in sim.events() if e.get("type") == type_]


def start_servers(test, sim_options, section_overrides):
    sim = harness.Simulator(**sim_options)
    sim.start()
    test.addCleanup(sim.close)
    orthanc = harness.Orthanc(cloud_ingest=cloudtest.ingest_section(sim, **section_overrides))
    orthanc.start()
    test.addCleanup(orthanc.close)
    return sim, orthanc


class UploadHeadersTest(unittest.TestCase):

    def test_a_host_header_from_the_upload_endpoint_fails_the_study_without_a_put(self):
        sim, orthanc = start_servers(self, {}, {})
        # Every upload answer carries it (count: more than any retry would ask).
        sim.faults({"endpoint": "upload", "headers": {"Host": "other-bucket.example.com"},
                    "count": 1000})
        tmp = cloudtest.tmpdir(self)
        study = cloudtest.generate(tmp, instances=2)
        uid = study["study_uid"]
        harness.storescu(orthanc.dicom_port, os.path.join(tmp, "study"))
        with cloudtest.explained(orthanc, sim, [uid]):
            entry = orthanc.wait_for(
                lambda: (lambda e: e if e and e["state"] in ("failed", "sent") else None)(
                    entry_of(orthanc, uid)),
                timeout=60, message="the study to fail")
            self.assertEqual("failed", entry["state"])
            self.assertIn('header "Host"', entry["last_error"])
            self.assertNotIn("X-Amz", entry["last_error"])
            # The simulator really answered the header, and no PUT reached it.
            fired = [e for e in events_of(sim, "fault_injected") if e.get("endpoint") == "upload"]
            self.assertTrue(fired, "the upload answer never carried the header")
            self.assertEqual({"Host": "other-bucket.example.com"}, fired[0]["headers"])
            puts = [e for e in sim.events()
                    if e.get("type") in ("upload_ok", "upload_refused", "upload_failed")]
            self.assertEqual([], puts)
            self.assertEqual(set(), sim.received_instances(uid))


class ClientCredentialsTest(unittest.TestCase):

    def test_credentials_with_form_special_characters_get_a_token_and_the_study_is_sent(self):
        sim, orthanc = start_servers(
            self, {"client_id": SPECIAL_ID, "client_secret": SPECIAL_SECRET}, {})
        # The harness passes them as they are (argv, no shell) and the plugin reads them so.
        self.assertEqual((SPECIAL_ID, SPECIAL_SECRET), (sim.client_id, sim.client_secret))
        tmp = cloudtest.tmpdir(self)
        study = cloudtest.generate(tmp, instances=3)
        uid = study["study_uid"]
        harness.storescu(orthanc.dicom_port, os.path.join(tmp, "study"))
        with cloudtest.explained(orthanc, sim, [uid]):
            cloudtest.wait_until_sent(orthanc, uid, timeout=60)
            cloudtest.assert_complete_in_one_batch(self, orthanc, sim, uid, 3)
            self.assertEqual([], events_of(sim, "token_refused"))
            self.assertTrue(events_of(sim, "token_issued"))
        self.assertNotIn(SPECIAL_SECRET, orthanc.log_text())


class TestConnectionTest(unittest.TestCase):

    def test_each_test_connection_asks_the_token_endpoint(self):
        sim, orthanc = start_servers(self, {}, {"AutoSend": False})

        def issued():
            return len(events_of(sim, "token_issued"))

        first = orthanc.post("/cloud-ingest/test-connection", {})
        self.assertIs(True, first["ok"], first)
        after_first = issued()
        self.assertGreaterEqual(after_first, 1)

        # The token from the first call is cached and valid for an hour: a second
        # test still asks the endpoint.
        second = orthanc.post("/cloud-ingest/test-connection", {})
        self.assertIs(True, second["ok"], second)
        self.assertEqual(after_first + 1, issued())

        # An endpoint that now fails is reported, whatever the cache holds.
        sim.faults({"endpoint": "token", "status": 503})
        third = orthanc.post("/cloud-ingest/test-connection", {})
        self.assertIs(False, third["ok"], third)
        self.assertIn("503", third["error"])
        self.assertEqual(1, len([e for e in events_of(sim, "fault_injected")
                                 if e.get("endpoint") == "token"]))


if __name__ == "__main__":
    unittest.main()
