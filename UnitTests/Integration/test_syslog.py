"""AuditSyslog against Debian's rsyslog as the collector (TCP, TLS, UDP): every
audit record arrives once and in order, including while the collector is down
(30 s) and across its restart. rsyslog runs with its own configuration on a
free loopback port in a temporary folder and is stopped by PID. Over TLS also
against an OpenSSL-based collector (Python's ssl module, in this process),
which sends TLS 1.3 session tickets where rsyslog's GnuTLS sends none."""

import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import unittest

import cloudtest
import harness

RSYSLOGD = shutil.which("rsyslogd") or "/usr/sbin/rsyslogd"


def make_ca(folder):
    """A CA and a server certificate for 127.0.0.1, made with the openssl CLI."""
    def openssl(*args):
        subprocess.run(["openssl"] + list(args), cwd=folder, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
            "ca.pem", "-days", "2", "-subj", "/CN=cloud-ingest test CA")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out",
            "server.csr", "-subj", "/CN=127.0.0.1")
    with open(os.path.join(folder, "san.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "san.ext")
    return {name: os.path.join(folder, name) for name in ("ca.pem", "server.pem", "server.key")}


class Rsyslog:
    """rsyslogd -n with its own configuration, writing what it receives to out.log."""

    def __init__(self, protocol, port=None, tls_files=None):
        self.protocol, self.tls_files = protocol, tls_files
        self.port = port or harness.free_port()
        self.folder = tempfile.mkdtemp(prefix="rsyslog-it-")
        self.out = os.path.join(self.folder, "out.log")
        self.process = None

    def config(self):
        lines = ['global(workDirectory="%s" maxMessageSize="64k")' % self.folder]
        if self.protocol == "tls":
            lines.append('global(DefaultNetstreamDriverCAFile="%s" '
                         'DefaultNetstreamDriverCertFile="%s" '
                         'DefaultNetstreamDriverKeyFile="%s")'
                         % (self.tls_files["ca.pem"], self.tls_files["server.pem"],
                            self.tls_files["server.key"]))
            lines.append('module(load="imtcp" StreamDriver.Name="gtls" StreamDriver.Mode="1" '
                         'StreamDriver.AuthMode="anon")')
            lines.append('input(type="imtcp" port="%d" address="127.0.0.1")' % self.port)
        elif self.protocol == "tcp":
            lines.append('module(load="imtcp")')
            lines.append('input(type="imtcp" port="%d" address="127.0.0.1")' % self.port)
        else:
            lines.append('module(load="imudp")')
            lines.append('input(type="imudp" port="%d" address="127.0.0.1")' % self.port)
        lines.append('template(name="raw" type="string" '
                     'string="%app-name% %msgid% %msg%\\n")')
        lines.append('*.* action(type="omfile" file="%s" template="raw")' % self.out)
        return "\n".join(lines) + "\n"

    def start(self):
        path = os.path.join(self.folder, "rsyslog.conf")
        with open(path, "w") as f:
            f.write(self.config())
        self.log = open(os.path.join(self.folder, "rsyslogd.log"), "ab")
        self.process = subprocess.Popen(
            [RSYSLOGD, "-n", "-f", path, "-i", os.path.join(self.folder, "rsyslogd.pid")],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log, start_new_session=True)
        if self.protocol != "udp":
            harness.wait_until(self.listening, 15, 0.1, "rsyslogd listening on %d" % self.port)
        else:
            time.sleep(0.5)  # UDP: nothing to probe; rsyslogd binds within this
        return self

    def listening(self):
        if self.process.poll() is not None:
            raise harness.WaitAborted("rsyslogd exited: " + harness.tail(self.log.name))
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", self.port)) == 0

    def stop(self):
        if self.process and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        if getattr(self, "log", None):
            self.log.close()

    def close(self):
        self.stop()
        if not harness.KEEP_TMP:
            shutil.rmtree(self.folder, ignore_errors=True)

    def records(self):
        """The audit records received, in arrival order (JSON objects)."""
        try:
            with open(self.out) as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            return []
        return [audit_record(*line.split(" ", 2)) for line in lines]


def audit_record(app, msgid, msg):
    """The audit record in one received message, checked against its header."""
    record = json.loads(msg)
    assert app == "orthanc-cloud-ingest" and msgid == record["event"], (app, msgid, msg)
    return record


class OpenSslCollector:
    """A TLS 1.3 syslog collector on Python's ssl module, i.e. OpenSSL: like any
    OpenSSL server it sends session tickets right after the handshake. Reads
    RFC 5425 frames and counts the connections it accepted."""

    def __init__(self, tls_files):
        self.port = harness.free_port()
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.minimum_version = ssl.TLSVersion.TLSv1_3
        self.context.num_tickets = 2  # OpenSSL's default, said out loud
        self.context.load_cert_chain(tls_files["server.pem"], tls_files["server.key"])
        self.lock = threading.Lock()
        self.messages, self.connections, self.sockets = [], 0, []
        self.listener = None

    def start(self):
        self.listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self.accept, daemon=True).start()
        return self

    def accept(self):
        while True:
            try:
                raw, _ = self.listener.accept()
            except OSError:
                return  # stopped
            with self.lock:
                self.connections += 1
                self.sockets.append(raw.dup())  # to shut it down from close()
            threading.Thread(target=self.serve, args=(raw,), daemon=True).start()

    def serve(self, raw):
        buffer = b""
        try:
            with self.context.wrap_socket(raw, server_side=True) as connection:
                while True:
                    chunk = connection.recv(65536)
                    if not chunk:
                        return
                    buffer += chunk
                    while b" " in buffer:
                        length, rest = buffer.split(b" ", 1)
                        if len(rest) < int(length):
                            break
                        with self.lock:
                            self.messages.append(rest[:int(length)].decode())
                        buffer = rest[int(length):]
        except OSError:
            return  # the client went, or stop()

    def close(self):
        if self.listener:
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes accept()
            self.listener.close()
            self.listener = None
        with self.lock:
            for s in self.sockets:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()
            self.sockets = []

    def records(self):
        """The audit records received, in arrival order (JSON objects)."""
        with self.lock:
            messages = list(self.messages)
        records = []
        for message in messages:  # <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID - MSG
            _, _, _, app, _, msgid, _, msg = message.split(" ", 7)
            records.append(audit_record(app, msgid, msg))
        return records


class SyslogCase(unittest.TestCase):
    protocol = "tcp"

    def setUp(self):
        self.tmp = cloudtest.tmpdir(self)
        tls_files = make_ca(self.tmp) if self.protocol == "tls" else None
        self.collector = self.make_collector(tls_files)
        self.addCleanup(lambda: self.collector.close())  # the one running at the end
        self.collector.start()
        self.sim = harness.Simulator().start()
        self.addCleanup(self.sim.close)
        syslog = {"Host": "127.0.0.1", "Port": self.collector.port, "Protocol": self.protocol}
        if tls_files:
            syslog["CACertificate"] = tls_files["ca.pem"]
        self.orthanc = harness.Orthanc(cloud_ingest=cloudtest.ingest_section(
            self.sim, AuditSyslog=syslog, AuditKey="k")).start()
        self.addCleanup(self.orthanc.close)

    def make_collector(self, tls_files):
        return Rsyslog(self.protocol, tls_files=tls_files)

    def restart_collector(self):
        """A new rsyslogd on the same port, appending to the same output file."""
        again = Rsyslog(self.protocol, port=self.collector.port)
        shutil.rmtree(again.folder, ignore_errors=True)
        again.folder, again.out = self.collector.folder, self.collector.out
        self.collector = again.start()

    def send_study(self, name, instances=3):
        study = cloudtest.generate(self.tmp, name, series=1, instances=instances, size_kb=4)
        for path, _ in study["instances"]:
            self.orthanc.upload_instance(path)
        cloudtest.wait_until_sent(self.orthanc, study["study_uid"])

    def assert_all_arrived_once_in_order(self, timeout=60):
        def complete():
            local = self.orthanc.audit_records()
            return local and len(self.collector.records()) >= len(local) and local
        local = harness.wait_until(complete, timeout, 0.3, "every audit record at rsyslog")
        received = self.collector.records()
        self.assertEqual([r["seq"] for r in local], [r["seq"] for r in received])
        self.assertEqual(local, received)


class TcpSyslogTest(SyslogCase):
    protocol = "tcp"

    def test_every_record_arrives_once_in_order_across_a_collector_outage(self):
        self.send_study("a")
        self.assert_all_arrived_once_in_order()
        self.collector.stop()
        self.send_study("b")  # sends go on while the collector is down
        time.sleep(30)  # the outage the issue names; the plugin retries meanwhile
        self.orthanc.post("/cloud-ingest/test-connection")
        self.restart_collector()
        self.assert_all_arrived_once_in_order()

    def test_records_spooled_while_orthanc_was_down_are_delivered_after_restart(self):
        self.collector.stop()
        self.send_study("c", instances=2)
        self.orthanc.restart()
        self.restart_collector()
        self.assert_all_arrived_once_in_order()


class TlsSyslogTest(SyslogCase):
    protocol = "tls"

    def test_records_arrive_over_tls_verified_by_the_test_ca(self):
        self.send_study("t")
        self.assert_all_arrived_once_in_order()


class OpenSslTlsSyslogTest(SyslogCase):
    """Issue 21 item 8: the session tickets made the plugin take the socket
    for closed and reconnect, with a warning, after every burst."""
    protocol = "tls"

    def make_collector(self, tls_files):
        return OpenSslCollector(tls_files)

    def test_one_connection_for_bursts_of_records_without_warnings(self):
        self.send_study("o1")
        self.assert_all_arrived_once_in_order()
        self.send_study("o2")  # the next burst, tickets long since arrived
        self.assert_all_arrived_once_in_order()
        self.assertEqual(1, self.collector.connections)
        warnings = [line for line in self.orthanc.log_text().splitlines()
                    if "syslog collector" in line]
        self.assertEqual([], warnings)


class UdpSyslogTest(SyslogCase):
    protocol = "udp"

    def test_records_arrive_as_datagrams(self):
        self.send_study("u", instances=2)
        self.assert_all_arrived_once_in_order()


if __name__ == "__main__":
    unittest.main()
