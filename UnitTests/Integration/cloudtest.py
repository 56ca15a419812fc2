"""Shared pieces of the plugin's integration tests: a CloudIngest section for a
simulator, waiting for a study to be sent, and the assertions every test makes
about what the cloud received."""

import contextlib
import hashlib
import json
import os
import tempfile
import unittest

import gen_study
import harness


def ingest_section(sim, **overrides):
    """A CloudIngest section pointing at `sim`, with fast retries for tests."""
    section = {
        "Url": sim.url,
        "ClientId": sim.client_id,
        "ClientSecret": sim.client_secret,
        "AllowedUploadHosts": ["127.0.0.1"],
        "RetryBaseDelay": 0.2,
        "RetryMaxDelay": 2,
    }
    section.update(overrides)
    return section


def generate(tmp, name="study", **kwargs):
    """Writes a generated study under tmp/name; returns gen_study's description."""
    return gen_study.generate_study(os.path.join(tmp, name), **kwargs)


def orthanc_study_id(orthanc, study_uid):
    answer = orthanc.post("/tools/lookup", study_uid)
    ids = [r["ID"] for r in answer if r["Type"] == "Study"]
    return ids[0] if ids else None


def wait_until_sent(orthanc, study_uid, timeout=120):
    """Waits until the plugin reports the study as sent; returns its tracked entry."""
    def sent():
        study_id = orthanc_study_id(orthanc, study_uid)
        if not study_id:
            return None
        status, _, body = orthanc.request("GET", "/cloud-ingest/studies/" + study_id)
        if status != 200:
            return None
        entry = harness.decode_body({"content-type": "application/json"}, body)
        return entry if entry["state"] == "sent" else None
    return orthanc.wait_for(sent, timeout=timeout, interval=0.5,
                            message="study %s sent" % study_uid)


def stored_md5s(orthanc, study_id):
    """SOP Instance UID -> MD5 of the file Orthanc stored."""
    result = {}
    for instance in orthanc.get("/studies/%s/instances" % study_id):
        status, _, body = orthanc.request("GET", "/instances/%s/file" % instance["ID"])
        assert status == 200
        result[instance["MainDicomTags"]["SOPInstanceUID"]] = hashlib.md5(body).hexdigest()
    return result


def assert_complete_in_one_batch(test, orthanc, sim, study_uid, expected_count, orders=1):
    """`orders` orders (None: any number), one live batch holding every stored
    instance once, byte-identical."""
    study_id = orthanc_study_id(orthanc, study_uid)
    test.assertIsNotNone(study_id)
    cloud = sim.studies().get(study_uid)
    test.assertIsNotNone(cloud, "the cloud never saw study %s" % study_uid)
    if orders is not None:
        test.assertEqual(orders, len(cloud["orders"]), cloud["orders"])
    live = [b for b in cloud["batches"] if not b["overwritten"] and not b["duplicate"]]
    test.assertEqual(1, len(live), "expected one batch, got %d" % len(live))
    instances = live[0]["instances"]
    sops = [i["sop_instance_uid"] for i in instances]
    test.assertEqual(len(sops), len(set(sops)), "an instance is in the batch twice")
    expected = stored_md5s(orthanc, study_id)
    test.assertEqual(expected_count, len(expected))
    test.assertEqual(expected, {i["sop_instance_uid"]: i["md5"] for i in instances})
    return cloud


class SharedServersTestCase(unittest.TestCase):
    """One simulator and one Orthanc with the plugin for all of a class's tests.

    Subclasses set `ingest` (CloudIngest keys over ingest_section's) and `orthanc_options`
    (harness.Orthanc keyword arguments), and may override `prepare` for class-wide data.
    Both servers are always stopped, by PID, and checked gone; `tmp` is a folder for the
    class's generated studies."""

    ingest = {}
    orthanc_options = {}

    @classmethod
    def setUpClass(cls):
        cls.tmp_holder = tempfile.TemporaryDirectory(prefix="cloud-%s-" % cls.__name__.lower())
        cls.tmp = cls.tmp_holder.name
        cls.orthanc = None
        cls.sim = harness.Simulator(*cls.simulator_args())
        try:
            cls.sim.start()
            cls.orthanc = harness.Orthanc(cloud_ingest=ingest_section(cls.sim, **cls.ingest),
                                          **cls.orthanc_options)
            cls.orthanc.start()
            cls.prepare()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def simulator_args(cls):
        """Extra command-line arguments of the class's simulator (none by default)."""
        return ()

    @classmethod
    def prepare(cls):
        """Class-wide setup after both servers run (nothing by default)."""

    @classmethod
    def tearDownClass(cls):
        try:
            if cls.orthanc is not None:
                cls.orthanc.close()
        finally:
            cls.sim.close()
            cls.tmp_holder.cleanup()
        for server in (cls.orthanc, cls.sim):
            if server is not None and server.process is not None:
                assert not harness.pid_alive(server.process.pid), "a server outlived its test"


def tmpdir(test):
    d = tempfile.TemporaryDirectory(prefix="cloud-it-")
    test.addCleanup(d.cleanup)
    return d.name


# ---- evidence for failure messages and simulator events (durability tests)


def plugin_entry(orthanc, study_id):
    """GET /cloud-ingest/studies/{id} (with its history), or None."""
    status, headers, body = orthanc.request("GET", "/cloud-ingest/studies/" + study_id)
    return harness.decode_body(headers, body) if status == 200 else None


def queued_count(entry):
    """How many times the plugin's history says the study was queued."""
    return sum(1 for h in entry.get("history", []) if h["event"] == "queued")


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
            study_id = orthanc_study_id(orthanc, uid)
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


def live_batches(cloud):
    return [b for b in cloud.get("batches", []) if not b["overwritten"] and not b["duplicate"]]
