"""Test harness: a real Orthanc, the cloud simulator and DCMTK's storescu, on 127.0.0.1 only.

Standard library only; runs under /usr/bin/python3. Every server is started
in its own session and stopped by PID (the simulator by process group, since npm spawns node),
on normal exit and on exceptions. Every wait is bounded in time.
"""

import atexit
import base64
import contextlib
import fcntl
import functools
import hashlib
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import weakref

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
SIMULATOR_DIR = os.path.join(REPO_ROOT, "Resources", "CloudSimulator")
ORTHANC_BINARY = os.environ.get("ORTHANC_BINARY", "/usr/sbin/Orthanc")
DEFAULT_PLUGIN = os.environ.get("CLOUD_INGEST_PLUGIN",
                                os.path.join(REPO_ROOT, "build", "libOrthancCloudIngest.so"))
LOOPBACK = "127.0.0.1"
KEEP_TMP = bool(os.environ.get("CLOUD_INGEST_KEEP_TMP"))  # keep work dirs for debugging


# ----------------------------------------------------------------------------- small helpers

def free_port():
    """A TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def md5_of_file(path):
    """Hex MD5 of a file's bytes (what the S3 store returns as ETag)."""
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class WaitAborted(Exception):
    """Raised by a polled function to end wait_until at once (e.g. the server died)."""


def wait_until(fn, timeout=30.0, interval=0.2, message="condition"):
    """Call fn until it returns something truthy; return that. Raise TimeoutError after timeout.

    Exceptions raised by fn count as "not yet" (the last one is reported on timeout), except
    WaitAborted, which is raised at once.
    """
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = fn()
            if last:
                return last
        except WaitAborted:
            raise
        except Exception as e:  # noqa: BLE001 - the caller polls until it works
            last = e
        if time.monotonic() >= deadline:
            raise TimeoutError("timed out after %.1f s waiting for %s (last: %r)"
                               % (timeout, message, last))
        time.sleep(interval)


def tail(path, lines=40):
    """The last lines of a text file ('' if absent)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 64 * 1024))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def loopback_env(extra=None):
    """The current environment with Nagle off and proxies bypassed for loopback."""
    env = dict(os.environ)
    env["TCP_NODELAY"] = "1"
    for key in ("NO_PROXY", "no_proxy"):
        env[key] = ",".join(filter(None, [env.get(key), "127.0.0.1", "localhost"]))
    env.update(extra or {})
    return env


# A UBSan build of the plugin reports into Orthanc's log (and aborts).
SANITIZER_REPORT = re.compile(r"ERROR: AddressSanitizer|runtime error: ")


def orthanc_env():
    """The environment of an Orthanc process."""
    return loopback_env({"UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1"})


def assert_no_sanitizer_report(log_text):
    """Raise AssertionError if a sanitizer reported anything in an Orthanc log."""
    match = SANITIZER_REPORT.search(log_text)
    if match:
        start = max(0, match.start() - 200)
        raise AssertionError("sanitizer report in Orthanc's log:\n" + log_text[start:start + 4000])


def _process_group_members(pgid):
    """Live (non-zombie) PIDs in a process group, read from /proc."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(entry))
    return members


def _signal_group_and_wait(process, pgid, sig, grace):
    """Signal a process group; True once the leader is reaped and no member is left."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)
    deadline = time.monotonic() + grace
    while True:
        if process.poll() is not None and not _process_group_members(pgid):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


_LIVE = weakref.WeakSet()  # servers started and not yet stopped, for the atexit safety net


@atexit.register
def _stop_leftovers():
    for server in list(_LIVE):
        with contextlib.suppress(Exception):
            server.stop()


def pid_alive(pid):
    """True if the PID names a live, non-zombie process."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


# ----------------------------------------------------------------------------- HTTP

class HttpError(Exception):
    """An HTTP answer with an unexpected status; keeps status, headers and body."""

    def __init__(self, method, url, status, headers, body):
        self.status, self.headers, self.body = status, headers, body
        text = body.decode("utf-8", "replace")[:2000] if isinstance(body, bytes) else str(body)
        super().__init__("%s %s -> HTTP %s: %s" % (method, url.split("?")[0], status, text))


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never a proxy


@functools.lru_cache(maxsize=None)
def orthanc_version():
    """The (major, minor, revision) of ORTHANC_BINARY, from its --version."""
    out = subprocess.run([ORTHANC_BINARY, "--version"], capture_output=True, text=True,
                         timeout=30).stdout
    match = re.search(r"(\d+)\.(\d+)\.(\d+)", out)
    return tuple(int(n) for n in match.groups()) if match else (0, 0, 0)


def plugin_json_type_ok(status, headers):
    """Whether an answer of the plugin that carries JSON says so as far as Orthanc lets it:
    application/json, except that from 1.12.2 Orthanc gives every status answer other than
    200 its own text/plain, which no SDK call can replace (docs/REFERENCE.md, Content types)."""
    content_type = headers.get("content-type", "")
    if "application/json" in content_type:
        return True
    return (status != 200 and orthanc_version() >= (1, 12, 2)
            and content_type.startswith("text/plain"))


def http_request(method, url, body=None, headers=None, auth=None, timeout=30.0):
    """One HTTP request. Returns (status, headers dict with lower-case keys, body bytes).

    body: dict/list (sent as JSON), str or bytes. auth: (user, password) or None.
    Never raises for an HTTP status; raises for connection errors.
    """
    headers = dict(headers or {})
    # Dicts, lists and text are sent as JSON, and so is a POST without a body: the plugin
    # answers POSTs of any other type with 415. Bytes keep the caller's type.
    if isinstance(body, (dict, list, str)) or (method == "POST" and not body):
        headers.setdefault("Content-Type", "application/json")
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
    elif isinstance(body, str):
        body = body.encode()
    if auth:
        token = base64.b64encode(("%s:%s" % auth).encode()).decode()
        headers["Authorization"] = "Basic " + token
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            return response.status, _lower(response.headers), response.read()
    except urllib.error.HTTPError as e:
        return e.code, _lower(e.headers), _error_body(e)


class TwoContentTypes(AssertionError):
    pass


def _error_body(error):
    # A server that refuses a request it did not read in full (a 100 KB request line) answers and
    # closes; the unread bytes make the kernel reset the socket, sometimes before the client has
    # read the answer's body. The status already arrived: an assertion on the body still fails.
    try:
        return error.read()
    except ConnectionResetError:
        return b""


def _lower(headers):
    """Lower-case names; every answer must carry at most one Content-Type (clients keep
    either the first or the last of two)."""
    types = headers.get_all("Content-Type") or []
    if len(types) > 1:
        raise TwoContentTypes("an answer with %d Content-Type headers: %r" % (len(types), types))
    return {k.lower(): v for k, v in headers.items()}


def decode_body(headers, body):
    """JSON answers parsed; empty answers as None; anything else as bytes."""
    if not body:
        return None
    content_type = headers.get("content-type", "")
    if "json" in content_type:
        return json.loads(body)
    if content_type.startswith("text/plain") and body.lstrip()[:1] in (b"{", b"["):
        with contextlib.suppress(ValueError):  # Orthanc >= 1.12.2's type on a JSON error
            return json.loads(body)
    return body


class _JsonHttp:
    """request/get/post/put/delete against self.url with self.auth."""

    url = None
    auth = None

    def request(self, method, path, body=None, headers=None, auth=True, timeout=30.0):
        """(status, headers, body bytes); auth=False sends no credentials."""
        return http_request(method, self.url + path, body, headers,
                            self.auth if auth is True else (auth or None), timeout)

    def call(self, method, path, body=None, expect_status=None, **kwargs):
        """Decoded answer; raises HttpError unless the status is 2xx or in expect_status."""
        status, headers, raw = self.request(method, path, body, **kwargs)
        expected = ([expect_status] if isinstance(expect_status, int) else expect_status)
        if (status not in expected) if expected else not 200 <= status < 300:
            raise HttpError(method, self.url + path, status, headers, raw)
        return decode_body(headers, raw)

    def get(self, path, **kwargs):
        return self.call("GET", path, **kwargs)

    def post(self, path, body=None, **kwargs):
        return self.call("POST", path, body, **kwargs)

    def put(self, path, body=None, **kwargs):
        return self.call("PUT", path, body, **kwargs)

    def delete(self, path, **kwargs):
        return self.call("DELETE", path, **kwargs)


# ----------------------------------------------------------------------------- simulator

def ensure_node_modules(sim_dir=SIMULATOR_DIR, timeout=600):
    """Run `npm ci` once if node_modules is missing; a lock file serialises parallel tests."""
    with open(os.path.join(sim_dir, "package.json")) as f:
        package = json.load(f)
    if not package.get("dependencies") and not package.get("devDependencies"):
        return
    marker = os.path.join(sim_dir, "node_modules", ".package-lock.json")  # written by npm last
    if os.path.exists(marker):
        return
    lock_name = "cloud-ingest-npm-ci-%s.lock" % hashlib.sha1(sim_dir.encode()).hexdigest()[:12]
    with open(os.path.join(tempfile.gettempdir(), lock_name), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if os.path.exists(marker):
            return
        run = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=sim_dir,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
        if run.returncode != 0:
            raise RuntimeError("npm ci failed in %s:\n%s"
                               % (sim_dir, run.stdout.decode("utf-8", "replace")[-3000:]))


def simulator_command(sim_dir=SIMULATOR_DIR):
    """How to start the simulator without npm in between when possible.

    bin/start.js, or the package's "start" script when it is a plain `node FILE ARGS`, is run
    with node directly; anything else goes through `npm start --silent --`.
    """
    node = shutil.which("node") or "node"
    if os.path.exists(os.path.join(sim_dir, "bin", "start.js")):
        return [node, "bin/start.js"]
    with open(os.path.join(sim_dir, "package.json")) as f:
        script = json.load(f).get("scripts", {}).get("start", "")
    tokens = shlex.split(script) if script else []
    if tokens[:1] == ["node"] and not re.search(r"[&|;<>`$()]", script):
        return [node] + tokens[1:]
    return ["npm", "start", "--silent", "--"]


class Simulator(_JsonHttp):
    """The cloud simulator as a context manager.

    Simulator("--url-ttl", "2", token_ttl=5) adds `--url-ttl 2 --token-ttl 5`; port 0 unless
    given. Exposes url, client_id, client_secret, scope, info (the whole JSON line), pid, and
    the /_sim/ helpers. command overrides simulator_command() (e.g. to force npm).
    """

    def __init__(self, *extra_args, sim_dir=SIMULATOR_DIR, start_timeout=30.0, stop_timeout=10.0,
                 env=None, command=None, **options):
        self.sim_dir, self.command = sim_dir, command
        self.args = list(extra_args)
        for key, value in options.items():
            flag = "--" + key.replace("_", "-")
            self.args += [flag] if value is True else [flag, str(value)]
        if "--port" not in self.args:
            self.args += ["--port", "0"]
        self.start_timeout, self.stop_timeout, self.env = start_timeout, stop_timeout, env
        self.process = self.workdir = None
        self.url = self.client_id = self.client_secret = self.scope = None
        self.info = {}

    @property
    def pid(self):
        return self.process.pid if self.process else None

    def start(self):
        ensure_node_modules(self.sim_dir)
        self.workdir = tempfile.mkdtemp(prefix="cloud-sim-")
        self.stdout_path = os.path.join(self.workdir, "stdout.log")
        self.stderr_path = os.path.join(self.workdir, "stderr.log")
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.process = subprocess.Popen(
                (self.command or simulator_command(self.sim_dir)) + self.args, cwd=self.sim_dir,
                stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                env=loopback_env(self.env), start_new_session=True)
        _LIVE.add(self)
        self.info = wait_until(self._ready_line, self.start_timeout, 0.05,
                               "the simulator's JSON line")
        self.url = self.info["url"].rstrip("/")
        self.client_id = self.info.get("client_id")
        self.client_secret = self.info.get("client_secret")
        self.scope = self.info.get("scope")
        return self

    def _ready_line(self):
        with open(self.stdout_path, "rb") as f:
            for line in f.read().decode("utf-8", "replace").splitlines():
                with contextlib.suppress(ValueError):
                    info = json.loads(line)
                    if isinstance(info, dict) and "url" in info:
                        return info
        if self.process.poll() is not None:
            # No secret here: the process died before printing its credentials line.
            raise WaitAborted("simulator exited with %s before it was ready; stderr:\n%s"
                               % (self.process.returncode, tail(self.stderr_path)))
        return None

    def stop(self):
        """SIGTERM to the process group, then SIGKILL to what is left after stop_timeout."""
        if not self.process:
            return
        pgid = self.process.pid  # session leader: its PID is the group id
        if not _signal_group_and_wait(self.process, pgid, signal.SIGTERM, self.stop_timeout):
            _signal_group_and_wait(self.process, pgid, signal.SIGKILL, 5.0)

    def close(self):
        """Stop and remove the work folder (stdout/stderr logs)."""
        self.stop()
        if self.workdir and not KEEP_TMP:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc):
        self.close()

    # --- /_sim/ helpers
    def studies(self):
        """GET /_sim/studies, unwrapped: {StudyInstanceUID: {orders, batches, metadata, ...}}."""
        return self.get("/_sim/studies").get("studies", {})

    def received_instances(self, study_uid, include_overwritten=False):
        """SOP Instance UIDs the service holds for a study (overwritten batches left out)."""
        study = self.studies().get(study_uid, {})
        return {i["sop_instance_uid"] for b in study.get("batches", [])
                if include_overwritten or not b.get("overwritten")
                for i in b.get("instances", [])}

    def events(self):
        """GET /_sim/events (the list, if wrapped in {"events": [...]})."""
        answer = self.get("/_sim/events")
        return answer.get("events", answer) if isinstance(answer, dict) else answer

    def faults(self, body):
        """POST /_sim/faults with one fault or a list of them."""
        return self.post("/_sim/faults", body)

    def reset(self):
        """POST /_sim/reset."""
        return self.post("/_sim/reset", {})


# ----------------------------------------------------------------------------- Orthanc

class Orthanc(_JsonHttp):
    """A real Orthanc with its own config, storage, ports and log, as a context manager.

    cloud_ingest: the "CloudIngest" section (omitted if None). plugins: list of plugin paths
    (default: $CLOUD_INGEST_PLUGIN or build/libOrthancCloudIngest.so; [] for none).
    extra: keys merged last into the configuration. env: variables added to its environment
    (e.g. a test hook such as CLOUD_INGEST_TEST_KILL_AFTER_AUDIT_SEQ).
    """

    def __init__(self, cloud_ingest=None, plugins=None, stable_age=2, authentication=True,
                 modalities=None, http_timeout=10, extra=None, start_timeout=30.0,
                 keep_dir=KEEP_TMP, env=None):
        self.cloud_ingest = cloud_ingest
        self.plugins = [DEFAULT_PLUGIN] if plugins is None else list(plugins)
        self.stable_age, self.modalities, self.http_timeout = stable_age, modalities, http_timeout
        self.extra = dict(extra or {})
        self.env = dict(env or {})  # added to Orthanc's environment at each (re)start
        self.auth = ("admin", secrets.token_urlsafe(12)) if authentication else None
        self.start_timeout, self.keep_dir = start_timeout, keep_dir
        self.process = self.workdir = self.config = None
        self.http_port = self.dicom_port = None

    # --- configuration
    def _prepare(self):
        if self.workdir:
            return
        self.workdir = tempfile.mkdtemp(prefix="orthanc-it-")
        self.config_path = os.path.join(self.workdir, "orthanc.json")
        self.log_path = os.path.join(self.workdir, "orthanc.log")
        self.index_dir = os.path.join(self.workdir, "index")
        self._choose_ports()

    def _choose_ports(self):
        self.http_port, self.dicom_port = free_port(), free_port()
        self.url = "http://%s:%d" % (LOOPBACK, self.http_port)
        self.config = self.build_config()

    def build_config(self):
        """The configuration dict written to orthanc.json."""
        config = {
            "Name": "CloudIngestTest",
            "StorageDirectory": os.path.join(self.workdir, "storage"),
            "IndexDirectory": self.index_dir,
            "HttpPort": self.http_port,
            "DicomPort": self.dicom_port,
            "DicomAet": "ORTHANC",
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": bool(self.auth),
            "StableAge": self.stable_age,
            "Plugins": self.plugins,
            "DicomModalities": self.modalities or {},
            "HttpTimeout": self.http_timeout,
        }
        if self.auth:
            config["RegisteredUsers"] = {self.auth[0]: self.auth[1]}
        if self.cloud_ingest is not None:
            config["CloudIngest"] = self.cloud_ingest
        config.update(self.extra)
        return config

    def _write_config(self):
        with open(self.config_path, "w") as f:
            json.dump(self.config, f, indent=2)

    def log_text(self):
        """Everything Orthanc logged so far (all runs of this instance)."""
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except (OSError, AttributeError):
            return ""

    # --- process control
    @property
    def pid(self):
        return self.process.pid if self.process else None

    def _launch(self):
        self._write_config()
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [ORTHANC_BINARY, self.config_path, "--verbose"], cwd=self.workdir,
                stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                env=dict(orthanc_env(), **self.env),
                start_new_session=True)
        _LIVE.add(self)

    def _launch_and_wait(self):
        """Launch and wait for GET /system; raise OrthancExited if the process ends first."""
        self._launch()

        def ready():
            if self.process.poll() is not None:
                raise OrthancExited(self.process.returncode, tail(self.log_path, 60))
            with contextlib.suppress(OSError):
                return self.request("GET", "/system", timeout=2)[0] == 200
            return False
        try:
            wait_until(ready, self.start_timeout, 0.1, "Orthanc's /system on %s" % self.url)
        except TimeoutError:
            self.stop()
            raise

    def start(self, port_attempts=3):
        """Start Orthanc and wait until GET /system answers 200."""
        self._prepare()
        for attempt in range(port_attempts):
            try:
                self._launch_and_wait()
                return self
            except OrthancExited as e:
                if "already in use" not in e.log or attempt + 1 == port_attempts:
                    raise
                self._choose_ports()  # lost a race for a free port: try others
        return self

    def stop(self, timeout=20.0):
        """SIGTERM, wait up to timeout, then SIGKILL. Returns the exit code (None if not run)."""
        if not self.process:
            return None
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill9()
        return self.process.returncode

    def kill9(self):
        """SIGKILL, as a crash would; returns once the process is gone."""
        if self.process and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def restart(self, config_update=None):
        """Stop (if running) and start again with the same storage and ports.

        config_update: keys merged into the configuration before the new start.
        """
        self.stop()
        self.config.update(config_update or {})
        self._launch_and_wait()
        return self

    def start_expect_failure(self, timeout=20.0):
        """Run Orthanc with a configuration that must make it refuse to start.

        Returns (exit_code, log_text). If Orthanc is still running after timeout, it is
        stopped and AssertionError is raised with its log.
        """
        self._prepare()
        self._launch()
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise AssertionError("Orthanc did not refuse to start; log:\n%s"
                                 % tail(self.log_path, 60)) from None
        return code, self.log_text()

    def close(self):
        """Stop and remove the work folder (config, storage, index, log) unless keep_dir.

        Raises AssertionError afterwards if a sanitizer reported anything in the log."""
        self.stop()
        log = self.log_text() if self.workdir else ""
        if self.workdir and not self.keep_dir:
            shutil.rmtree(self.workdir, ignore_errors=True)
        assert_no_sanitizer_report(log)

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, exc_type, exc, tb):
        self.stop()  # first, so the tail below holds the last lines
        if exc_type is not None and issubclass(exc_type, Exception) and self.workdir:
            sys.stderr.write("---- Orthanc log tail (%s) ----\n%s\n"
                             % (self.log_path, tail(self.log_path)))
        self.close()

    # --- conveniences
    def upload_instance(self, path):
        """POST /instances with a DICOM file; returns Orthanc's JSON answer."""
        with open(path, "rb") as f:
            return self.post("/instances", f.read(),
                             headers={"Content-Type": "application/dicom"})

    @property
    def audit_log_path(self):
        """The plugin's audit file: CloudIngest.AuditLog or its default in IndexDirectory
        (named after NodeName with a postgresql:// Database)."""
        section = self.config.get("CloudIngest") or {}
        if section.get("AuditLog"):
            return section["AuditLog"]
        index = self.config.get("IndexDirectory", self.index_dir)
        if str(section.get("Database", "")).startswith(("postgresql://", "postgres://")):
            return os.path.join(index, "cloud-ingest-audit-%s.jsonl" % section["NodeName"])
        return os.path.join(index, "cloud-ingest-audit.jsonl")

    def audit_records(self):
        """The audit log's records (one JSON object per line); [] while the file is absent."""
        try:
            with open(self.audit_log_path) as f:
                return [json.loads(line) for line in f if line.strip()]
        except FileNotFoundError:
            return []

    def wait_for(self, predicate, timeout=30.0, interval=0.2, message="condition"):
        """Poll predicate() until truthy and return that; fails at once if Orthanc died."""
        def check():
            if self.process.poll() is not None:
                raise OrthancExited(self.process.returncode, tail(self.log_path, 60))
            return predicate()
        return wait_until(check, timeout, interval, message)


class OrthancExited(WaitAborted):
    """Orthanc ended while it was expected to run."""

    def __init__(self, code, log):
        super().__init__("Orthanc exited with %s; log tail:\n%s" % (code, log))
        self.code, self.log = code, log


# ----------------------------------------------------------------------------- DICOM sending

def storescu(port, files, aet="STORESCU", called="ORTHANC", host=LOOPBACK, timeout=300.0):
    """Send DICOM files with DCMTK's storescu (Nagle off); return its output.

    files: a directory (sent recursively), a file, or an iterable of both. Long lists are
    linked into a temporary folder and scanned (+sd) rather than passed on the command line.
    Raises RuntimeError with the output if storescu fails or reports an error.
    """
    paths = [files] if isinstance(files, (str, os.PathLike)) else [str(p) for p in files]
    with tempfile.TemporaryDirectory(prefix="storescu-") as scratch:
        if len(paths) > 200:
            for index, path in enumerate(paths):
                os.symlink(os.path.abspath(path), os.path.join(scratch, "%06d.dcm" % index))
            paths = [scratch]
        command = ["storescu", "-aet", aet, "-aec", called, "-nh", "-to", "10",
                   "+sd", "+r", host, str(port)] + [str(p) for p in paths]
        run = subprocess.run(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, env=loopback_env(), timeout=timeout)
    output = run.stdout.decode("utf-8", "replace")
    if run.returncode != 0 or re.search(r"^[EF]: ", output, re.MULTILINE):
        raise RuntimeError("storescu to %s:%s failed (exit %s):\n%s"
                           % (host, port, run.returncode, output[-4000:]))
    return output
