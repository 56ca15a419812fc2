"""Three Orthanc nodes (CLOUD_INGEST_CLUSTER_NODES=2: two, as the Debian 13
stage runs it) on one PostgreSQL (Debian's orthanc-postgresql index plugin,
"Lock": false, one shared storage folder that is also every node's
IndexDirectory: the nodes share one volume), each with the plugin
on the same postgresql:// store. The truth is what the simulator received: every
study one order, every instance once in one complete batch, whichever node
its instances reached, whichever node died, and across a PostgreSQL restart
and a restart of every node."""

import os
import random
import tempfile
import threading
import time
import unittest

import cloudtest
import harness
import postgres

INDEX_PLUGIN = "/usr/share/orthanc/plugins/libOrthancPostgreSQLIndex.so"
NODES = ("node-a", "node-b", "node-c")[:int(os.environ.get("CLOUD_INGEST_CLUSTER_NODES", "3"))]
assert len(NODES) >= 2, "a cluster needs two nodes"
STABLE_AGE = 2
LEASE = 6


class ClusterTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.holder = tempfile.TemporaryDirectory(prefix="cloud-cluster-")
        cls.tmp = cls.holder.name
        cls.storage = os.path.join(cls.tmp, "storage")
        cls.pg = postgres.Server()
        cls.sim = harness.Simulator()
        cls.nodes = {}
        try:
            cls.pg.start()
            cls.sim.start()
            for name in NODES:
                cls.nodes[name] = cls.make_node(name)
            for node in cls.nodes.values():
                node.start()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def make_node(cls, name, **keys):
        section = cloudtest.ingest_section(
            cls.sim, Database=cls.pg.uri(), NodeName=name, LeaseDuration=LEASE,
            ChangesPollInterval=1, StudyRetryDelay=1, **keys)
        # The plugin's files default to IndexDirectory: shared here, as in the
        # shipped compose file, so each node must name its own.
        return harness.Orthanc(
            cloud_ingest=section, stable_age=STABLE_AGE,
            plugins=[INDEX_PLUGIN, harness.DEFAULT_PLUGIN],
            extra={"PostgreSQL": cls.pg.orthanc_index(), "StorageDirectory": cls.storage,
                   "IndexDirectory": cls.storage})

    @classmethod
    def tearDownClass(cls):
        try:
            for node in cls.nodes.values():
                node.close()
        finally:
            cls.sim.close()
            cls.pg.close()
            cls.holder.cleanup()
        for node in cls.nodes.values():
            if node.process is not None:
                assert not harness.pid_alive(node.process.pid), "a node outlived the test"

    # ---- helpers

    def any_node(self):
        return next(n for n in self.nodes.values() if n.process and n.process.poll() is None)

    def generate(self, name, instances):
        return cloudtest.generate(self.tmp, name, series=1, instances=instances, size_kb=4)

    def send_files(self, node, files):
        harness.storescu(node.dicom_port, [path for path, _ in files])

    def wait_all_sent(self, uids, timeout):
        node = self.any_node()
        pending = set(uids)

        def done():
            for uid in list(pending):
                study_id = cloudtest.orthanc_study_id(node, uid)
                entry = cloudtest.plugin_entry(node, study_id) if study_id else None
                if entry and entry["state"] == "sent":
                    pending.discard(uid)
            return not pending
        node.wait_for(done, timeout=timeout, interval=1,
                      message="%d studies sent (%d left)" % (len(uids), len(pending)))

    def assert_once(self, uid, instances, orders=1):
        cloudtest.assert_complete_in_one_batch(self, self.any_node(), self.sim, uid, instances,
                                               orders=orders)

    def wait_sending(self, node, uid, name=None, with_order=False):
        """Waits until the study is being sent (by node `name` if given, with
        its order created if `with_order`), as `node` sees it; returns the
        study's Orthanc id and plugin entry."""
        found = {}

        def sending():
            found["id"] = found.get("id") or cloudtest.orthanc_study_id(node, uid)
            entry = cloudtest.plugin_entry(node, found["id"]) if found["id"] else None
            if not entry or entry["state"] != "sending":
                return None
            if (name and entry["node"] != name) or (with_order and not entry["order_id"]):
                return None
            return entry
        entry = node.wait_for(sending, timeout=60, interval=0.2,
                              message="%s sending" % (name or "a node"))
        return found["id"], entry

    def assert_audit_intact_on_every_node(self):
        for name, node in self.nodes.items():
            answer = node.get("/cloud-ingest/audit/verify")
            self.assertTrue(answer["ok"], (name, answer))
            self.assertEqual(os.path.join(self.storage, "cloud-ingest-audit-%s.jsonl" % name),
                             node.audit_log_path)
            self.assertEqual({name}, {r["node"] for r in node.audit_records()})

    def cloud_counts(self):
        studies = self.sim.studies()
        return {uid: (len(s["orders"]), len(s["batches"]),
                      sum(len(b["instances"]) for b in s["batches"]))
                for uid, s in studies.items()}

    # ---- the tests (named so that they run in this order)

    def test_1_studies_sent_to_random_nodes_are_each_sent_once(self):
        rng = random.Random(12)
        names = list(self.nodes)
        expected = {}
        jobs = []
        for i in range(100):
            count = rng.randint(2, 4)
            study = self.generate("random-%03d" % i, count)
            expected[study["study_uid"]] = count
            files = study["instances"]
            if i % 3 == 0:
                # Split instance by instance over the nodes.
                for index, item in enumerate(files):
                    jobs.append((self.nodes[names[(i + index) % len(names)]], [item]))
            else:
                jobs.append((self.nodes[rng.choice(names)], files))
        # Four senders at once, as several modalities would.
        lock = threading.Lock()
        errors = []

        def worker():
            while True:
                with lock:
                    if not jobs:
                        return
                    node, files = jobs.pop(0)
                try:
                    self.send_files(node, files)
                except Exception as e:  # reported below, the other senders go on
                    errors.append(e)
        threads = [threading.Thread(target=worker) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
        self.assertEqual([], errors)

        self.wait_all_sent(expected, timeout=240)
        for uid, count in expected.items():
            self.assert_once(uid, count)
        status = self.any_node().get("/cloud-ingest/status")
        self.assertEqual("postgresql", status["database"]["kind"])
        self.assertTrue(status["database"]["reachable"])
        self.assertEqual(sorted(NODES), sorted(n["name"] for n in status["nodes"]))
        self.assertTrue(all(n["alive"] for n in status["nodes"]), status["nodes"])
        self.assertEqual(100, status["queue"].get("sent"), status["queue"])
        self.assert_audit_intact_on_every_node()

    def test_2_a_study_still_arriving_on_another_node_waits_for_it(self):
        # Node A's StableStudy fires while node B still receives the study:
        # the shared LastUpdate holds the send back, so one order carries all.
        study = self.generate("slow-split", 6)
        files = study["instances"]
        a, b = self.nodes["node-a"], self.nodes["node-b"]
        self.send_files(a, files[:2])
        for item in files[2:]:
            time.sleep(STABLE_AGE * 0.75)  # B's gaps stay shorter than StableAge
            self.send_files(b, [item])
        self.wait_all_sent([study["study_uid"]], timeout=90)
        self.assert_once(study["study_uid"], 6)
        entry = cloudtest.plugin_entry(a, cloudtest.orthanc_study_id(a, study["study_uid"]))
        self.assertIn("waiting", [h["event"] for h in entry["history"]], entry["history"])

    def test_3_a_node_killed_mid_send_has_its_study_finished_by_another(self):
        sim = self.sim
        study = self.generate("killed-node", 8)
        victim = self.nodes[NODES[-1]]
        sim.faults({"endpoint": "put", "rate_bytes_per_s": 4000, "count": 4})
        self.send_files(victim, study["instances"])
        uid = study["study_uid"]
        study_id, entry = self.wait_sending(victim, uid, NODES[-1], with_order=True)
        order_id = entry["order_id"]
        victim.kill9()
        killed_at = time.monotonic()
        survivor = self.nodes["node-a"]
        survivor.wait_for(
            lambda: (cloudtest.plugin_entry(survivor, study_id) or {}).get("state") == "sent",
            timeout=LEASE + 60, interval=0.5, message="another node finished the study")
        took = time.monotonic() - killed_at
        self.assertLess(took, LEASE + 30, "took %.1f s" % took)
        entry = cloudtest.plugin_entry(survivor, study_id)
        self.assertEqual(order_id, entry["order_id"])  # the order is reused
        events = [h["event"] for h in entry["history"]]
        self.assertIn("taken-over", events, entry["history"])
        self.assert_once(uid, 8)
        status = survivor.get("/cloud-ingest/status")
        dead = [n for n in status["nodes"] if n["name"] == NODES[-1]]
        self.assertEqual(1, len(dead))
        self.assertFalse(dead[0]["alive"])
        # Back for the next tests, with its old name: nothing of its own to resume.
        victim.restart()

    def test_4_postgresql_restarted_mid_send_loses_nothing_and_sends_nothing_twice(self):
        study = self.generate("pg-restart", 8)
        node = self.nodes["node-b"]
        self.sim.faults({"endpoint": "put", "rate_bytes_per_s": 4000, "count": 3})
        self.send_files(node, study["instances"])
        uid = study["study_uid"]
        self.wait_sending(node, uid)
        self.pg.restart(down_seconds=3)
        self.wait_all_sent([uid], timeout=LEASE + 90)
        self.assert_once(uid, 8)
        for name, each in self.nodes.items():
            self.assertTrue(each.process.poll() is None, "%s died with PostgreSQL" % name)
        status = node.get("/cloud-ingest/status")
        self.assertTrue(status["database"]["reachable"], status["database"])

    def test_4b_a_cancel_on_one_node_stops_the_send_on_another(self):
        study = self.generate("cancel-across", 10)
        sender, other = self.nodes["node-b"], self.nodes["node-a"]
        self.sim.faults({"endpoint": "put", "rate_bytes_per_s": 2000, "count": 40})
        self.send_files(sender, study["instances"])
        study_id, _ = self.wait_sending(sender, study["study_uid"], "node-b")
        status, _, _ = other.request("POST", "/cloud-ingest/studies/%s/cancel" % study_id,
                                     body=b"{}", headers={"Content-Type": "application/json"})
        self.assertEqual(200, status)
        cancelled_at = time.monotonic()
        stopped = "study %s: stopping its attempt here" % study_id
        sender.wait_for(lambda: stopped in sender.log_text(), timeout=10, interval=0.1,
                        message="node-b stopping the cancelled send")
        self.assertLess(time.monotonic() - cancelled_at, 3.0)
        time.sleep(2)
        entry = cloudtest.plugin_entry(other, study_id)
        self.assertEqual("cancelled", entry["state"])
        self.assertLess(entry["instances_sent"], 10)

    def test_5_all_nodes_restarted_together_send_nothing_again(self):
        before = self.cloud_counts()
        threads = [threading.Thread(target=n.restart) for n in self.nodes.values()]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        node = self.any_node()
        last = node.get("/changes?limit=0")["Last"]
        # Every node caught up and the trackers went past the last change.
        node.wait_for(lambda: node.get("/cloud-ingest/status")["changes_cursor"] >= last,
                      timeout=60, interval=1, message="the cursor past the last change")
        time.sleep(STABLE_AGE + 3)  # room for any wrongly queued study to go out
        self.assertEqual(before, self.cloud_counts())
        queue = node.get("/cloud-ingest/status")["queue"]
        self.assertEqual(0, queue.get("queued", 0) + queue.get("sending", 0), queue)
        self.assert_audit_intact_on_every_node()

    def test_6_a_node_on_another_nodes_audit_file_refuses_to_start(self):
        taken = self.nodes["node-a"].audit_log_path
        intruder = self.make_node("node-d", AuditLog=taken)
        try:
            code, log = intruder.start_expect_failure()
        finally:
            intruder.close()
        self.assertNotEqual(0, code)
        lines = [line for line in log.splitlines() if "CloudIngest.AuditLog: " in line]
        self.assertEqual(1, len(lines), log[-3000:])
        self.assertIn('written by node "node-a"', lines[0])
        self.assertIn("give each node its own AuditLog", lines[0])


class DatabaseDownAtStartUpTest(unittest.TestCase):
    """The plugin's PostgreSQL does not answer when Orthanc starts (Orthanc's
    own index is elsewhere): Orthanc starts, the status says why nothing is
    sent, and the plugin sends once the database is back."""

    def test_orthanc_starts_and_the_plugin_waits_for_its_database(self):
        pg = postgres.Server()
        self.addCleanup(pg.close)
        pg.start()
        pg.stop()
        sim = harness.Simulator()
        sim.start()
        self.addCleanup(sim.close)
        orthanc = harness.Orthanc(cloud_ingest=cloudtest.ingest_section(
            sim, Database=pg.uri(), NodeName="lonely"), stable_age=1)
        orthanc.start()
        self.addCleanup(orthanc.close)
        status = orthanc.get("/cloud-ingest/status")
        self.assertEqual("postgresql", status["database"]["kind"])
        self.assertFalse(status["database"]["reachable"], status["database"])
        self.assertTrue(status["database"]["last_error"])
        self.assertIn("plugin database does not answer", orthanc.log_text())

        tmp = cloudtest.tmpdir(self)
        study = cloudtest.generate(tmp, "while-down", series=1, instances=3, size_kb=4)
        harness.storescu(orthanc.dicom_port, os.path.join(tmp, "while-down"))
        time.sleep(3)  # stable; its insert fails and waits for the database
        self.assertEqual({}, sim.studies())
        pg.start_again()
        with cloudtest.explained(orthanc, sim, [study["study_uid"]]):
            cloudtest.wait_until_sent(orthanc, study["study_uid"], timeout=90)
            cloudtest.assert_complete_in_one_batch(self, orthanc, sim, study["study_uid"], 3)
        self.assertTrue(orthanc.get("/cloud-ingest/status")["database"]["reachable"])


if __name__ == "__main__":
    unittest.main()
