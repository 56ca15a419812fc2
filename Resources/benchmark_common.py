"""What the benchmark's parts share: errors, logging, timing helpers, the study generator, the
limit (curl to presigned URLs) and the peers (Orthanc's C-STORE and STOW-RS to a second Orthanc).
"""

import concurrent.futures
import datetime
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import urllib.parse

import gen_study
import harness

DICOMWEB_PLUGIN = os.environ.get("ORTHANC_DICOMWEB_PLUGIN",
                                 "/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
MB = 1024 * 1024

class BenchmarkFailure(Exception):
    """Something did not work (as opposed to being slow): the run exits non-zero."""


def log(message):
    sys.stdout.flush()
    sys.stderr.write("[%s] %s\n" % (time.strftime("%H:%M:%S"), message))
    sys.stderr.flush()


def settle():
    """Before a timed step: write back dirty pages (the files just generated or stored) so
    that the step does not pay for the previous step's disk writes."""
    os.sync()
    time.sleep(0.2)


def cpu_seconds(pid):
    """User + system CPU seconds a live process has used so far."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def parse_iso(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


# ----------------------------------------------------------------------------- measurements

def generate(workdir, name, count, size_kb):
    started = time.monotonic()
    study = gen_study.generate_study(os.path.join(workdir, name), series=1, instances=count,
                                     size_kb=size_kb, patient_name="Bench^" + name.upper(),
                                     study_description="Benchmark " + name)
    log("generated %s: %d x %d KB in %.1f s" % (name, count, size_kb,
                                               time.monotonic() - started))
    return study


def latest_batch_by_order(sim, study_uid, order_id):
    """{sop_uid: instance} of the study's latest batch whose last upload came from order_id."""
    # The fast store parses what it received when a /_sim/ view is read: a 2 GB ZIP takes
    # about 20 s there, longer than the harness's default timeout.
    study = sim.get("/_sim/studies", timeout=600).get("studies", {}).get(study_uid) or {}
    batches = study.get("batches") or []
    if not batches:
        return {}
    return {i["sop_instance_uid"]: i for i in batches[-1]["instances"]
            if i.get("order_id") == order_id}


def measure_limit(bench, study, workdir, direct=False, presigned=None, concurrency=None):
    """PUT every file with curl --parallel (keep-alive), `concurrency` (default --concurrency)
    transfers at once. Returns (seconds, info)."""
    sim = bench.sim
    concurrency = concurrency or bench.args.concurrency
    uid = study["study_uid"]
    if presigned is None:
        order = bench.api("POST", "/new-order", {"study_instance_uid": uid})["order_id"]

        def presign(item):
            path, sop = item
            query = urllib.parse.urlencode({
                "order_id": order, "filename": sop + ".dcm", "content_type": "application/dicom",
                "study_uid": uid, "size": os.path.getsize(path)})
            return path, bench.api("GET", "/upload?" + query)["url"]
        started = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
            presigned = order, list(pool.map(presign, study["instances"]))
        presign_seconds = time.monotonic() - started
    else:
        presign_seconds = None
    order, targets = presigned
    config_path = os.path.join(workdir, "curl-%s.conf" % ("direct" if direct else "proxy"))
    with open(config_path, "w") as f:
        for path, url in targets:
            f.write('url = "%s"\nupload-file = "%s"\noutput = "/dev/null"\n' % (url, path))
    command = ["curl", "--silent", "--show-error", "--noproxy", "*", "--parallel",
               "--parallel-immediate", "--parallel-max", str(concurrency),
               "-H", "Content-Type: application/dicom", "-H", "Expect:",
               "-w", "%{http_code} %{num_connects}\\n", "-K", config_path]
    if direct:
        # Same URLs (the signature covers the Host header), but connect to the store itself.
        sim_port = urllib.parse.urlsplit(sim.url).port
        store = urllib.parse.urlsplit(sim.info["s3_url"])
        command[1:1] = ["--connect-to", "%s:%d:%s:%d" % (harness.LOOPBACK, sim_port,
                                                          store.hostname, store.port)]
    settle()
    cpu_before = cpu_seconds(sim.pid), children_cpu_seconds()
    started = time.monotonic()
    run = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=harness.loopback_env(), timeout=1800)
    seconds = time.monotonic() - started
    cpu = {"simulator": cpu_seconds(sim.pid) - cpu_before[0],
           "curl": children_cpu_seconds() - cpu_before[1]}
    lines = run.stdout.decode().split()
    codes, connects = lines[0::2], [int(n) for n in lines[1::2]]
    good = codes.count("200")
    if run.returncode != 0 or good != len(targets):
        raise BenchmarkFailure("curl%s: %d of %d PUTs answered 200 (exit %d): %s" % (
            " (direct)" if direct else "", good, len(targets), run.returncode,
            run.stderr.decode("utf-8", "replace")[-500:]))
    if not direct:
        received = latest_batch_by_order(sim, uid, order)
        if len(received) != len(targets):
            raise BenchmarkFailure("limit: the simulator holds %d of %d instances"
                                   % (len(received), len(targets)))
    return seconds, {"connections": sum(connects), "presigned": (order, targets),
                     "presign_seconds": presign_seconds, "cpu": cpu}


def audit_breakdown(orthanc, order_id):
    """Times of the plugin's steps for one order, from its audit log.

    Also the mean time from an instance's url_issued to its upload_ok record in "put_mean"
    (the URL is asked ahead, so this includes the wait for the thread's previous PUT).
    """
    records = [r for r in orthanc.audit_records() if r.get("order_id") == order_id]
    times, issued, puts = {}, {}, []
    for r in records:
        t = parse_iso(r["time"])
        event = r["event"]
        times.setdefault(event + ":first", t)
        times[event + ":last"] = t
        if event == "url_issued":
            issued[r.get("sop_instance_uid")] = t
        elif event == "upload_ok" and r.get("sop_instance_uid") in issued:
            puts.append(t - issued[r.get("sop_instance_uid")])
    times["put_mean"] = statistics.mean(puts) if puts else 0.0
    return times


def peer_instances(peer, study_id):
    status, _, body = peer.request("GET", "/studies/%s/instances" % study_id)
    return len(json.loads(body)) if status == 200 else 0


def measure_peer(bench, study_id, count, kind):
    """Orthanc forwards the study to the peer (synchronously); seconds around the REST call."""
    orthanc, peer = bench.orthanc, bench.peer
    if peer_instances(peer, study_id):
        peer.delete("/studies/" + study_id)
    path = "/modalities/peer/store" if kind == "dicom" else "/dicom-web/servers/peer/stow"
    settle()
    started = time.monotonic()
    orthanc.post(path, {"Resources": [study_id], "Synchronous": True}, timeout=1800)
    seconds = time.monotonic() - started
    got = peer_instances(peer, study_id)
    if got != count:
        raise BenchmarkFailure("peer %s: the receiving Orthanc holds %d of %d instances"
                               % (kind, got, count))
    peer.delete("/studies/" + study_id)
    return seconds



def verdict(ok):
    return "PASS" if ok else "missed"
