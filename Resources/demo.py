#!/usr/bin/python3
"""The demo: the cloud simulator and Orthanc with the plugin, a study sent end to end.

Run through Resources/demo.sh (which installs and builds first), or directly once built:
    /usr/bin/python3 Resources/demo.py [--exit] [--keep]
Everything listens on 127.0.0.1 on free ports and is stopped (by PID) on exit or Ctrl-C.
The simulator's client secret is never printed; Orthanc's throwaway admin password is.
"""

import argparse
import os
import signal
import sys
import tempfile
import time

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(REPO_ROOT, "UnitTests", "Integration"))

import harness  # noqa: E402
from gen_study import generate_study  # noqa: E402

SERIES, INSTANCES = 2, 5


def tracked_entry(orthanc, study_uid):
    """The plugin's entry for a study from GET /cloud-ingest/studies (list or wrapped)."""
    answer = orthanc.get("/cloud-ingest/studies")
    entries = answer.get("studies", []) if isinstance(answer, dict) else answer
    return next((e for e in entries if e.get("study_instance_uid") == study_uid), None)


def wait_until_sent(sim, orthanc, study, timeout):
    """Bounded wait until the service holds every instance and the plugin says "sent"."""
    expected = {sop for _, sop in study["instances"]}

    def done():
        entry = tracked_entry(orthanc, study["study_uid"])
        received = sim.received_instances(study["study_uid"])
        return entry if received == expected and entry and entry.get("state") == "sent" else None
    return harness.wait_until(done, timeout, 0.5, "the study to reach the simulator")


def print_where_to_look(sim, orthanc, entry, seconds):
    user, password = orthanc.auth
    base = orthanc.url
    print("\nStudy %s: %d instances sent to the simulator in %.1f s (order %s)."
          % (entry.get("study_instance_uid"), SERIES * INSTANCES, seconds, entry.get("order_id")))
    print("""
  Orthanc Explorer   %(base)s/app/explorer.html   (user %(user)s, password %(password)s)
  Cloud Ingest page  %(base)s/cloud-ingest/app/
  Plugin status      curl -u %(user)s:%(password)s %(base)s/cloud-ingest/status
  Tracked studies    curl -u %(user)s:%(password)s %(base)s/cloud-ingest/studies
  Service received   curl %(sim)s/_sim/studies
  Audit log          %(audit)s
  Orthanc log        %(log)s%(kept)s
  DICOM port         %(dicom)d (AET ORTHANC): send more with storescu 127.0.0.1 %(dicom)d FILES
""" % {"base": base, "user": user, "password": password, "sim": sim.url,
       "audit": orthanc.audit_log_path,
       "log": orthanc.log_path, "dicom": orthanc.dicom_port,
       "kept": "" if orthanc.keep_dir else "   (both removed on exit; --keep keeps them)"})


def run(args):
    if not os.path.exists(harness.DEFAULT_PLUGIN):
        sys.exit("The plugin is not built (%s): run Resources/demo.sh" % harness.DEFAULT_PLUGIN)
    print("Starting the cloud simulator ...", flush=True)
    with harness.Simulator() as sim:
        cloud_ingest = {"Url": sim.url, "ClientId": sim.client_id,
                        "ClientSecret": sim.client_secret,
                        "AllowedUploadHosts": ["127.0.0.1"]}
        if sim.scope:
            cloud_ingest["Scope"] = sim.scope
        print("Starting Orthanc with the plugin ...", flush=True)
        orthanc = harness.Orthanc(cloud_ingest=cloud_ingest, stable_age=3, keep_dir=args.keep)
        with orthanc, tempfile.TemporaryDirectory(prefix="demo-study-") as study_dir:
            study = generate_study(study_dir, series=SERIES, instances=INSTANCES,
                                   patient_name="Demo^Patient")
            print("Sending a study (%d series x %d instances) with storescu; it is sent to the "
                  "cloud once stable (3 s) ..." % (SERIES, INSTANCES), flush=True)
            started = time.monotonic()
            harness.storescu(orthanc.dicom_port, study_dir)
            try:
                entry = wait_until_sent(sim, orthanc, study, args.timeout)
            except TimeoutError as e:
                status = orthanc.request("GET", "/cloud-ingest/status")
                print("FAILED: %s\nPlugin status (HTTP %d): %s\nOrthanc log tail:\n%s"
                      % (e, status[0], status[2].decode("utf-8", "replace"),
                         harness.tail(orthanc.log_path)), file=sys.stderr)
                return 1
            print_where_to_look(sim, orthanc, entry, time.monotonic() - started)
            if args.exit:
                return 0
            print("Running; press Ctrl-C to stop.", flush=True)
            while orthanc.process.poll() is None and sim.process.poll() is None:
                time.sleep(1)
            print("A server stopped unexpectedly; see %s" % orthanc.log_path, file=sys.stderr)
            return 1


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exit", action="store_true", help="stop once the study is sent")
    parser.add_argument("--keep", action="store_true", help="keep Orthanc's folder (logs, audit)")
    parser.add_argument("--timeout", type=float, default=60, help="seconds to wait for the send")
    args = parser.parse_args()
    # Ctrl-C works even if SIGINT was inherited as ignored; SIGTERM/SIGHUP unwind like it,
    # so the context managers stop every server.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda signum, _: sys.exit(128 + signum))
    try:
        return run(args)
    except KeyboardInterrupt:
        print("\nStopped.")
        return 0


if __name__ == "__main__":
    sys.exit(main())
