"""The benchmark's cluster line: several Orthanc nodes on one PostgreSQL.

Three runs on one PostgreSQL 15 (started here, in a temporary folder) with
Orthanc's index in it (Debian's orthanc-postgresql), each on a fresh
simulator, each timing one batch of studies from the first StableStudy (the
plugin's first "queued" record) to the last instance the store accepted:

  sqlite   one node, the plugin's queue in SQLite: the baseline
  pg1      one node, the plugin's queue in PostgreSQL (the same workload)
  pg2      two nodes on the PostgreSQL queue, twice the workload, half
           stored on each node

Reported: the throughput ratio pg2/pg1 (instances per second; 2.0 would be
perfect scaling, on a machine with the cores for it) and the store's
overhead per study, (pg1 - sqlite) / studies. Each run also checks that every
study arrived once, complete, in one order.
"""

import datetime
import os
import shutil
import threading
import time

import cloudtest
import gen_study
import harness
import postgres

INDEX_PLUGIN = "/usr/share/orthanc/plugins/libOrthancPostgreSQLIndex.so"

# (studies per node-workload, instances per study, KiB per instance)
FULL = (24, 20, 64)
SMOKE = (6, 6, 16)


def _parse_iso(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _nodes(pg, sim, plugin, count, store, args, storage):
    nodes = []
    for index in range(count):
        database = pg.uri() if store == "postgresql" else None
        section = cloudtest.ingest_section(sim, Concurrency=args.concurrency,
                                           StudyWorkers=args.study_workers,
                                           NodeName="bench-%d" % index)
        if database:
            section["Database"] = database
        nodes.append(harness.Orthanc(
            cloud_ingest=section, stable_age=args.stable_age, plugins=[INDEX_PLUGIN, plugin],
            extra={"PostgreSQL": pg.orthanc_index(), "StorageDirectory": storage}))
    return nodes


def _run(pg, plugin, args, workdir, label, node_count, store, studies):
    """Stores `studies` (spread over the nodes), waits until all are sent, checks them."""
    storage = os.path.join(workdir, label + "-storage")
    # A fresh index and queue for each run: empty both databases' tables.
    pg.psql("DROP SCHEMA IF EXISTS cloud_ingest CASCADE; DROP SCHEMA public CASCADE; "
            "CREATE SCHEMA public;")
    with harness.Simulator("--quiet") as sim:
        nodes = _nodes(pg, sim, plugin, node_count, store, args, storage)
        try:
            for node in nodes:
                node.start()
            threads = []
            errors = []

            def store_on(node, share):
                try:
                    for study in share:
                        harness.storescu(node.dicom_port, [p for p, _ in study["instances"]])
                except Exception as e:  # reported after the join
                    errors.append(e)
            for index, node in enumerate(nodes):
                share = studies[index::node_count]
                threads.append(threading.Thread(target=store_on, args=(node, share)))
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=600)
            if errors:
                raise RuntimeError("storing failed: %s" % errors[0])
            uids = [s["study_uid"] for s in studies]
            node = nodes[0]
            timeout = 120 + len(uids) * 5
            entries = {}

            def all_sent():
                for uid in uids:
                    if uid in entries:
                        continue
                    study_id = cloudtest.orthanc_study_id(node, uid)
                    entry = cloudtest.plugin_entry(node, study_id) if study_id else None
                    if entry and entry["state"] == "sent":
                        entries[uid] = entry
                return len(entries) == len(uids)
            node.wait_for(all_sent, timeout=timeout, interval=0.5,
                          message="%s: %d studies sent" % (label, len(uids)))
            first_stable = min(_parse_iso(h["time"]) for e in entries.values()
                               for h in e["history"] if h["event"] == "queued")
            cloud = sim.studies()
            last_received = 0.0
            instances = 0
            for study in studies:
                record = cloud.get(study["study_uid"]) or {}
                live = [b for b in record.get("batches", [])
                        if not b["overwritten"] and not b["duplicate"]]
                if len(record.get("orders", [])) != 1 or len(live) != 1 or \
                        len(live[0]["instances"]) != len(study["instances"]):
                    raise RuntimeError("%s: study %s not sent once and complete" % (
                        label, study["study_uid"]))
                instances += len(study["instances"])
                last_received = max(last_received, max(
                    _parse_iso(i["time"]) for i in live[0]["instances"]))
            seconds = last_received - first_stable
            return {"label": label, "nodes": node_count, "store": store, "studies": len(uids),
                    "instances": instances, "seconds": seconds,
                    "instances_per_second": instances / max(seconds, 1e-6)}
        finally:
            for node in nodes:
                node.close()
            shutil.rmtree(storage, ignore_errors=True)


def measure_cluster(args, workdir, smoke, log):
    studies_per_node, count, size_kb = SMOKE if smoke else FULL
    folder = os.path.join(workdir, "cluster")
    os.makedirs(folder, exist_ok=True)

    def batch(name, n):
        return [gen_study.generate_study(os.path.join(folder, "%s-%03d" % (name, i)), series=1,
                                         instances=count, size_kb=size_kb,
                                         patient_name="Bench^Cluster")
                for i in range(n)]
    results = {}
    with postgres.Server() as pg:
        for label, nodes, store, n in (("sqlite", 1, "sqlite", studies_per_node),
                                       ("pg1", 1, "postgresql", studies_per_node),
                                       ("pg2", 2, "postgresql", 2 * studies_per_node)):
            studies = batch(label, n)
            results[label] = _run(pg, args.plugin, args, folder, label, nodes, store, studies)
            log("cluster %s: %d studies x %d instances on %d node(s) in %.2f s" % (
                label, n, count, nodes, results[label]["seconds"]))
            for i in range(n):
                shutil.rmtree(os.path.join(folder, "%s-%03d" % (label, i)), ignore_errors=True)
    pg1, pg2, sqlite = results["pg1"], results["pg2"], results["sqlite"]
    results["throughput_ratio"] = pg2["instances_per_second"] / pg1["instances_per_second"]
    results["store_overhead_ms_per_study"] = \
        (pg1["seconds"] - sqlite["seconds"]) * 1000 / sqlite["studies"]
    return results
