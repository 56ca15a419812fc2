"""Self-check of the test harness, independent of the plugin and of the real simulator.

- gen_study writes valid Part-10 files with the requested charset and names;
- Orthanc starts without plugins, receives a study by storescu and by POST /instances,
  keeps it across a crash and restart, and is gone (PID) afterwards;
- start_expect_failure reports a refused start;
- Simulator reads the JSON line, and stops the whole process group (also through npm, and with
  a child that ignores SIGTERM), using a tiny fake simulator written by the test.
"""

import json
import os
import tempfile
import time
import unittest

import pydicom

import harness
from gen_study import generate_study

FAKE_SIMULATOR_JS = r"""
const http = require('http');
const { spawn } = require('child_process');
const mode = process.env.FAKE_MODE || 'ok';
if (mode === 'die') { process.stderr.write('boom: cannot start\n'); process.exit(3); }
const childCode = (mode === 'stubborn' ? "process.on('SIGTERM', () => {});" : '') +
                  'setInterval(() => {}, 1000);';
const child = spawn(process.execPath, ['-e', childCode], { stdio: 'ignore' });
const studies = { studies: { '1.2.3': { batches: [
  { instances: [{ sop_instance_uid: '1.2.3.4' }], overwritten: false },
  { instances: [{ sop_instance_uid: '1.2.3.5' }], overwritten: true }] } } };
const server = http.createServer((req, res) => {
  const body = req.url === '/_sim/studies' ? studies : { method: req.method, path: req.url };
  res.writeHead(200, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify(body));
});
server.listen(0, '127.0.0.1', () => {
  console.log('a banner line that is not JSON');
  console.log(JSON.stringify({ url: `http://127.0.0.1:${server.address().port}`,
    client_id: 'cid', client_secret: 'csecret', scope: 'upload',
    argv: process.argv.slice(2), child_pid: child.pid }));
});
"""


class GenStudyTest(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory()
        self.dir = self._tmp.name

    def tearDown(self):
        self._tmp.cleanup()

    def test_files_are_valid_part10_with_utf8_names(self):
        study = generate_study(self.dir, series=2, instances=3, patient_name="Müller^Jürgen",
                               size_kb=12, charset="ISO_IR_192", modality="MR")
        self.assertEqual(len(study["instances"]), 6)
        self.assertEqual(len({sop for _, sop in study["instances"]}), 6)
        series = set()
        for path, sop_uid in study["instances"]:
            ds = pydicom.dcmread(path)  # raises unless it is a Part-10 file
            self.assertEqual(ds.file_meta.TransferSyntaxUID, pydicom.uid.ExplicitVRLittleEndian)
            self.assertEqual(ds.SOPInstanceUID, sop_uid)
            self.assertEqual(ds.file_meta.MediaStorageSOPInstanceUID, sop_uid)
            self.assertEqual(ds.SOPClassUID, "1.2.840.10008.5.1.4.1.1.4")
            self.assertEqual(ds.StudyInstanceUID, study["study_uid"])
            self.assertEqual(ds.SpecificCharacterSet, "ISO_IR 192")
            self.assertEqual(str(ds.PatientName), "Müller^Jürgen")
            self.assertEqual(len(ds.PixelData), ds.Rows * ds.Columns * 2)
            self.assertAlmostEqual(os.path.getsize(path) / 1024, 12, delta=1.5)
            series.add(ds.SeriesInstanceUID)
        self.assertEqual(series, set(study["series_uids"]))
        with open(study["instances"][0][0], "rb") as f:
            self.assertIn("Müller".encode("utf-8"), f.read())

    def test_latin1_charset_encodes_names_in_latin1(self):
        study = generate_study(self.dir, instances=1, patient_name="Müller^Jürgen",
                               charset="ISO_IR 100")
        with open(study["instances"][0][0], "rb") as f:
            raw = f.read()
        self.assertIn("Müller^Jürgen".encode("latin-1"), raw)
        self.assertNotIn("Müller".encode("utf-8"), raw)

    def test_unknown_charset_is_refused(self):
        with self.assertRaises(ValueError):
            generate_study(self.dir, instances=1, charset="NOT_A_CHARSET")


class OrthancWithoutPluginTest(unittest.TestCase):
    def test_receives_by_storescu_and_rest_survives_restart_and_stops(self):
        with tempfile.TemporaryDirectory() as tmp:
            by_dimse = generate_study(os.path.join(tmp, "a"), series=2, instances=3,
                                      patient_name="Dimse^Dora", charset="ISO_IR_192")
            by_rest = generate_study(os.path.join(tmp, "b"), instances=1, patient_name="Rest^Rob")
            with harness.Orthanc(plugins=[]) as orthanc:
                pid, workdir = orthanc.pid, orthanc.workdir
                self.assertEqual(orthanc.config["Plugins"], [])
                self.assertEqual(orthanc.get("/plugins"), ["explorer.js"])  # built-in entry only
                self.assertEqual(orthanc.request("GET", "/studies", auth=False)[0], 401)
                harness.storescu(orthanc.dicom_port, os.path.join(tmp, "a"))
                answer = orthanc.upload_instance(by_rest["instances"][0][0])
                self.assertEqual(answer["Status"], "Success")

                def both_studies():
                    studies = orthanc.get("/studies?expand")
                    return studies if len(studies) == 2 else None
                studies = orthanc.wait_for(both_studies, timeout=10, message="two studies")
                by_uid = {s["MainDicomTags"]["StudyInstanceUID"]: s for s in studies}
                dimse_study = by_uid[by_dimse["study_uid"]]
                self.assertEqual(dimse_study["PatientMainDicomTags"]["PatientName"],
                                 "Dimse^Dora")
                self.assertEqual(len(dimse_study["Series"]), 2)
                self.assertIn(by_rest["study_uid"], by_uid)

                orthanc.kill9()
                self.assertFalse(harness.pid_alive(pid))
                with self.assertRaises(harness.OrthancExited):
                    orthanc.wait_for(lambda: False, timeout=5)
                with self.assertRaisesRegex(RuntimeError, "storescu .* failed"):
                    harness.storescu(orthanc.dicom_port, by_rest["instances"][0][0])
                orthanc.restart()
                self.assertNotEqual(orthanc.pid, pid)
                self.assertEqual(orthanc.get("/statistics")["CountInstances"], 7)
                last_pid = orthanc.pid
            self.assertFalse(harness.pid_alive(last_pid))
            self.assertFalse(os.path.exists(workdir))

    def test_start_expect_failure_reports_the_refusal(self):
        orthanc = harness.Orthanc(plugins=[], extra={"HttpPort": "not-a-number"})
        try:
            code, log = orthanc.start_expect_failure(timeout=10)
        finally:
            orthanc.close()
        self.assertNotEqual(code, 0)
        self.assertIn("HttpPort", log)


class SimulatorProcessTest(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory()
        self.dir = self._tmp.name
        with open(os.path.join(self.dir, "fake.js"), "w") as f:
            f.write(FAKE_SIMULATOR_JS)
        with open(os.path.join(self.dir, "package.json"), "w") as f:
            json.dump({"name": "fake-sim", "private": True,
                       "scripts": {"start": "node fake.js"}}, f)

    def tearDown(self):
        self._tmp.cleanup()

    def test_reads_line_passes_flags_and_stops_the_group(self):
        with harness.Simulator("--url-ttl", "2", sim_dir=self.dir, token_ttl=5) as sim:
            self.assertTrue(sim.url.startswith("http://127.0.0.1:"))
            self.assertEqual((sim.client_id, sim.client_secret, sim.scope),
                             ("cid", "csecret", "upload"))
            self.assertEqual(sim.info["argv"], ["--url-ttl", "2", "--token-ttl", "5",
                                                "--port", "0"])
            self.assertEqual(sim.received_instances("1.2.3"), {"1.2.3.4"})
            self.assertEqual(sim.faults({"endpoint": "put"}),
                             {"method": "POST", "path": "/_sim/faults"})
            pids = [sim.pid, sim.info["child_pid"]]
            self.assertTrue(all(harness.pid_alive(p) for p in pids))
        self.assertFalse(any(harness.pid_alive(p) for p in pids))

    def test_through_npm_kills_a_child_that_ignores_sigterm(self):
        sim = harness.Simulator(sim_dir=self.dir, stop_timeout=1.0, env={"FAKE_MODE": "stubborn"},
                                command=["npm", "start", "--silent", "--"])
        with sim:
            child = sim.info["child_pid"]
            self.assertTrue(harness.pid_alive(child))
            started = time.monotonic()
        self.assertFalse(harness.pid_alive(child))
        self.assertFalse(harness.pid_alive(sim.pid))
        self.assertLess(time.monotonic() - started, 8)

    def test_a_simulator_that_dies_is_reported_with_its_stderr(self):
        started = time.monotonic()
        with self.assertRaisesRegex(harness.WaitAborted, "boom: cannot start"):
            with harness.Simulator(sim_dir=self.dir, env={"FAKE_MODE": "die"}):
                pass
        self.assertLess(time.monotonic() - started, 10)


if __name__ == "__main__":
    unittest.main()
