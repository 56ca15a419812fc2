"""A throw-away PostgreSQL server for tests: Debian's initdb and pg_ctl (of the
newest installed version: 15 on Debian 12, 17 on Debian 13) into a temporary folder, on a free port of 127.0.0.1, stopped by the PID in
its postmaster.pid (never by name).

Usable as a module (`with postgres.Server() as pg: pg.uri(...)`) and as a
command that runs another one with the server's URI in its environment:
    python3 postgres.py --env CLOUD_INGEST_TEST_POSTGRES -- ./UnitTests ...
The command also gets <VAR>_CTL, a shell command that controls the server
when given one more word: `stop` (fast: sessions are cut), `start`, `restart`.
"""

import argparse
import glob
import os
import pwd
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import harness


def _newest_postgresql_bin():
    """Debian installs each major version in /usr/lib/postgresql/<major>/bin."""
    found = glob.glob("/usr/lib/postgresql/*/bin/initdb")
    if not found:
        return "/usr/lib/postgresql/15/bin"  # a failing start then names the missing initdb
    newest = max(found, key=lambda path: int(path.split("/")[-3]))
    return os.path.dirname(newest)


PG_BIN = os.environ.get("CLOUD_INGEST_PG_BIN") or _newest_postgresql_bin()


def _as_postgres_user():
    """initdb refuses to run as root: run the server as `postgres` then."""
    if os.geteuid() != 0:
        return None
    return pwd.getpwnam("postgres")


class Server:
    def __init__(self, database="orthanc"):
        self.database = database
        self.port = None
        self.folder = None
        self.data = None
        self.pid = None

    # ---- lifetime

    def start(self, timeout=60):
        user = _as_postgres_user()
        self.folder = tempfile.mkdtemp(prefix="cloud-pg-")
        os.chmod(self.folder, 0o755)  # the server user must traverse it
        self.data = os.path.join(self.folder, "data")
        self.socket_dir = os.path.join(self.folder, "sock")
        os.mkdir(self.socket_dir)
        if user is not None:
            os.chown(self.folder, user.pw_uid, user.pw_gid)
            os.chown(self.socket_dir, user.pw_uid, user.pw_gid)
        self._run([os.path.join(PG_BIN, "initdb"), "-D", self.data, "-A", "trust", "-U",
                   "postgres", "--no-sync", "-E", "UTF8"], timeout=timeout)
        self.port = harness.free_port()
        self._start_server(timeout)
        self._run([os.path.join(PG_BIN, "createdb"), "-h", harness.LOOPBACK, "-p",
                   str(self.port), "-U", "postgres", self.database], timeout=timeout)
        return self

    def _pg_ctl(self, timeout=60):
        """pg_ctl with this server's folder, log and options, the mode to follow."""
        options = ("-p %d -k %s -c listen_addresses=%s -c fsync=off -c max_connections=200"
                   % (self.port, self.socket_dir, harness.LOOPBACK))
        command = [os.path.join(PG_BIN, "pg_ctl"), "-D", self.data, "-l",
                   os.path.join(self.folder, "server.log"), "-w", "-t", str(int(timeout)),
                   "-m", "fast", "-o", options]
        if _as_postgres_user() is not None:
            command = ["runuser", "-u", "postgres", "--"] + command
        return command

    def ctl_command(self):
        """A shell command that takes `stop`, `start` or `restart` as its last word."""
        return " ".join(shlex.quote(word) for word in self._pg_ctl())

    def _start_server(self, timeout):
        self._run(self._pg_ctl(timeout) + ["start"], timeout=timeout + 5)
        self.pid = self._current_pid()
        harness._LIVE.add(self)  # stopped at exit even if the test never gets to it

    def _current_pid(self):
        """The running postmaster's PID (a test may have restarted it with ctl_command)."""
        try:
            with open(os.path.join(self.data, "postmaster.pid")) as f:
                return int(f.readline().strip())
        except (OSError, ValueError):
            return None

    def stop(self, timeout=30):
        """Fast stop (SIGINT to the postmaster: sessions end, no new ones)."""
        if self.pid is None:
            return
        pid, self.pid = self._current_pid(), None
        if pid is None:
            return
        try:
            os.kill(pid, signal.SIGINT)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while harness.pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if harness.pid_alive(pid):
            os.kill(pid, signal.SIGKILL)

    def start_again(self, timeout=60):
        """Starts a stopped server again, on the same port with the same data."""
        self._start_server(timeout)

    def restart(self, down_seconds=0.0, timeout=60):
        """Stops the server, stays down for a moment, starts it on the same port."""
        self.stop()
        time.sleep(down_seconds)
        self._start_server(timeout)

    def close(self):
        self.stop()
        if self.folder:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    # ---- access

    def uri(self, database=None):
        return "postgresql://postgres@%s:%d/%s" % (harness.LOOPBACK, self.port,
                                                  database or self.database)

    def orthanc_index(self):
        """The `PostgreSQL` section for Debian's orthanc-postgresql index plugin."""
        return {"EnableIndex": True, "EnableStorage": False, "Host": harness.LOOPBACK,
                "Port": self.port, "Database": self.database, "Username": "postgres",
                "Password": "", "Lock": False}

    def psql(self, sql, database=None, timeout=30):
        """Runs SQL; returns psql's unaligned, tuples-only output."""
        result = subprocess.run(
            [os.path.join(PG_BIN, "psql"), "-h", harness.LOOPBACK, "-p", str(self.port), "-U",
             "postgres", "-d", database or self.database, "-v", "ON_ERROR_STOP=1", "-At", "-c",
             sql], capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError("psql failed: " + result.stderr.strip())
        return result.stdout.strip()

    def log_text(self):
        path = os.path.join(self.folder or "", "server.log")
        return open(path, errors="replace").read() if os.path.exists(path) else ""

    def _run(self, command, timeout):
        user = _as_postgres_user()
        if user is not None and command[0] != "runuser":
            command = ["runuser", "-u", "postgres", "--"] + command
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                                cwd=self.folder)
        if result.returncode != 0:
            raise RuntimeError("%s failed (%d): %s%s" % (os.path.basename(command[-1]),
                               result.returncode, result.stdout[-2000:], result.stderr[-2000:]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="CLOUD_INGEST_TEST_POSTGRES",
                        help="the variable that receives the server's URI")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command to run")
    with Server() as server:
        env = dict(os.environ)
        env[args.env] = server.uri()
        env[args.env + "_CTL"] = server.ctl_command()
        return subprocess.run(command, env=env).returncode


if __name__ == "__main__":
    sys.exit(main())
