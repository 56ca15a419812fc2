"""A bad CloudIngest section stops Orthanc at start-up with one line naming the key."""

import unittest

import harness


def section(**overrides):
    base = {"Url": "http://127.0.0.1:9", "ClientId": "id", "ClientSecret": "s3cret-value"}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


class ConfigurationTest(unittest.TestCase):
    def refuses(self, cloud_ingest, expected_line):
        orthanc = harness.Orthanc(cloud_ingest=cloud_ingest, authentication=False)
        try:
            code, log = orthanc.start_expect_failure(timeout=30)
        finally:
            orthanc.close()
        self.assertNotEqual(0, code, "Orthanc started with a bad configuration")
        lines = [l for l in log.splitlines() if "CloudIngest." in l]
        self.assertTrue(any(expected_line in l for l in lines),
                        "no line with %r in:\n%s" % (expected_line, "\n".join(lines)))
        self.assertNotIn("s3cret-value", log)

    def test_unknown_key_is_named_with_a_suggestion(self):
        self.refuses(section(Concurency=4),
                     "CloudIngest.Concurency: unknown key; did you mean 'Concurrency'?")

    def test_missing_required_key(self):
        self.refuses(section(ClientSecret=None), "CloudIngest.ClientSecret")

    def test_wrong_type(self):
        self.refuses(section(Concurrency="four"), "CloudIngest.Concurrency")

    def test_secret_of_the_wrong_type_is_not_echoed(self):
        self.refuses(section(ClientSecret=["s3cret-value"]), "CloudIngest.ClientSecret")

    def test_bad_url(self):
        self.refuses(section(Url="ftp://example.org"), "CloudIngest.Url")

    def test_disabled_plugin_loads_and_says_so(self):
        with harness.Orthanc(cloud_ingest={"Enable": False}) as orthanc:
            status = orthanc.get("/cloud-ingest/status")
            self.assertFalse(status["enabled"])
            self.assertIn("disabled", orthanc.log_text())

    def test_valid_configuration_starts(self):
        with harness.Orthanc(cloud_ingest=section()) as orthanc:
            status = orthanc.get("/cloud-ingest/status")
            self.assertTrue(status["enabled"])
            self.assertEqual("http://127.0.0.1:9", status["url"])
            self.assertNotIn("s3cret-value", str(status))


if __name__ == "__main__":
    unittest.main()
