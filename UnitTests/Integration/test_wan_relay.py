"""Resources/wan_relay.py, the delaying TCP relay that gives the benchmark and the tests a WAN:
its round-trip time, its shared bandwidth cap, bytes intact both ways, half-close, resets
passed on, and bounded buffering when the receiver stops reading."""

import hashlib
import os
import socket
import sys
import threading
import time
import unittest

import harness

sys.path.insert(0, os.path.join(harness.REPO_ROOT, "Resources"))
import wan_relay  # noqa: E402  (after the path insert)

MB = 1024 * 1024


class TcpServer:
    """A threaded TCP server on 127.0.0.1 running handler(conn) for each connection."""

    def __init__(self, handler):
        self.handler = handler
        self.sock = socket.create_server((harness.LOOPBACK, 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stopping = threading.Event()
        self.threads = []
        self.errors = []

    def __enter__(self):
        thread = threading.Thread(target=self._accept, daemon=True)
        thread.start()
        self.threads.append(thread)
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        for thread in self.threads:
            thread.join(10)
        self.sock.close()

    def _accept(self):
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            thread.start()
            self.threads.append(thread)

    def _serve(self, conn):
        conn.settimeout(30)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            with conn:
                self.handler(conn)
        except OSError as e:
            self.errors.append(e)


def ping_pong(conn):
    """Answers each 1-byte message with 1 byte until EOF."""
    while True:
        data = conn.recv(1)
        if not data:
            return
        conn.sendall(data)


def digest_until_eof(conn):
    """Reads to EOF (the client's half-close), then answers the SHA-256 and the bytes back."""
    received = bytearray()
    while True:
        data = conn.recv(1 << 20)
        if not data:
            break
        received += data
    conn.sendall(hashlib.sha256(received).digest() + bytes(received))


def sink(conn):
    """Reads and drops everything; answers the byte count at EOF."""
    total = 0
    while True:
        data = conn.recv(1 << 20)
        if not data:
            break
        total += len(data)
    conn.sendall(b"%d\n" % total)


def recv_all(conn):
    chunks = []
    while True:
        data = conn.recv(1 << 20)
        if not data:
            return b"".join(chunks)
        chunks.append(data)


def connect(port):
    conn = socket.create_connection((harness.LOOPBACK, port), timeout=30)
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return conn


def send_file_and_count(port, size):
    """Sends size bytes, half-closes, returns (the server's count, seconds to its answer)."""
    payload = b"\x5a" * (1 << 20)
    started = time.monotonic()
    with connect(port) as conn:
        left = size
        while left:
            left -= conn.send(payload[:min(left, len(payload))])
        conn.shutdown(socket.SHUT_WR)
        answer = recv_all(conn)
    return int(answer), time.monotonic() - started


class WanRelayTest(unittest.TestCase):

    def test_round_trip_time_of_small_messages(self):
        rtt_ms = 100
        with TcpServer(ping_pong) as server, \
                wan_relay.WanRelay((harness.LOOPBACK, server.port), rtt_ms=rtt_ms, mbit=100) as relay:
            started = time.monotonic()
            with connect(relay.port) as conn:
                conn.sendall(b"x")
                self.assertEqual(b"x", conn.recv(1))
                first = time.monotonic() - started
                times = []
                for _ in range(5):
                    t = time.monotonic()
                    conn.sendall(b"y")
                    self.assertEqual(b"y", conn.recv(1))
                    times.append(time.monotonic() - t)
            sys.stderr.write("rtt %d ms: first exchange (with the handshake) %.1f ms, then %s ms\n"
                             % (rtt_ms, first * 1000, " ".join("%.1f" % (x * 1000) for x in times)))
            # Each exchange costs one round trip; the first also pays the handshake's.
            for t in times:
                self.assertGreaterEqual(t, 0.095, times)
                self.assertLess(t, 0.190, times)  # generous: a shared, loaded machine
            self.assertGreaterEqual(first, 0.195)
            self.assertLess(first, 0.300)
        self.assertEqual([], server.errors)

    def test_throughput_capped_at_the_bandwidth_and_shared_by_connections(self):
        mbit, size = 40, 5 * MB  # 5 MB at 5 MB/s: about 1.05 s
        with TcpServer(sink) as server, \
                wan_relay.WanRelay((harness.LOOPBACK, server.port), rtt_ms=10, mbit=mbit) as relay:
            count, one = send_file_and_count(relay.port, size)
            self.assertEqual(size, count)
            # Two connections at once share the link: together as long as one with both's bytes.
            results = []
            started = time.monotonic()
            threads = [threading.Thread(target=lambda: results.append(
                send_file_and_count(relay.port, size // 2))) for _ in range(2)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(60)
            two = time.monotonic() - started
        expected = size / (mbit * 1e6 / 8)
        sys.stderr.write("%.0f MB at %d Mbit/s: one connection %.2f s, two sharing %.2f s "
                         "(the link alone: %.2f s)\n" % (size / MB, mbit, one, two, expected))
        self.assertEqual([size // 2] * 2, [c for c, _ in results])
        self.assertGreaterEqual(one, expected * 0.97)
        self.assertLess(one, expected * 1.4 + 0.1)
        self.assertGreaterEqual(two, expected * 0.97)
        self.assertLess(two, expected * 1.4 + 0.1)

    def test_bytes_intact_both_ways_with_half_close(self):
        payload = os.urandom(3 * MB + 12345)
        with TcpServer(digest_until_eof) as server, \
                wan_relay.WanRelay((harness.LOOPBACK, server.port), rtt_ms=20, mbit=1000) as relay:
            with connect(relay.port) as conn:
                conn.sendall(payload)
                conn.shutdown(socket.SHUT_WR)  # the server reads to EOF, then still answers
                answer = recv_all(conn)
        self.assertEqual(hashlib.sha256(payload).digest(), answer[:32])
        self.assertEqual(len(payload), len(answer) - 32)
        self.assertTrue(answer[32:] == payload, "the bytes sent back differ")
        self.assertEqual([], server.errors)

    def test_reset_reaches_the_client(self):
        def reset(conn):
            conn.recv(1)
            # SO_LINGER 0: close() sends a RST instead of a FIN.
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")

        with TcpServer(reset) as server, \
                wan_relay.WanRelay((harness.LOOPBACK, server.port), rtt_ms=20, mbit=100) as relay:
            with connect(relay.port) as conn:
                conn.sendall(b"x")
                with self.assertRaises(ConnectionResetError):
                    conn.recv(1)

    def test_buffering_bounded_when_the_receiver_stops_reading(self):
        stop_reading = threading.Event()

        def stalled(conn):
            conn.recv(1)
            stop_reading.wait(30)

        with TcpServer(stalled) as server, \
                wan_relay.WanRelay((harness.LOOPBACK, server.port), rtt_ms=0, mbit=0) as relay:
            with connect(relay.port) as conn:
                conn.setblocking(False)
                sent, chunk = 0, b"\0" * (1 << 20)
                deadline = time.monotonic() + 10
                # Push until the sender blocks for a second: what the relay, the kernel's
                # buffers and the server's window took in must stay bounded.
                last_progress = time.monotonic()
                while time.monotonic() < deadline and time.monotonic() - last_progress < 1.0:
                    try:
                        sent += conn.send(chunk)
                        last_progress = time.monotonic()
                    except BlockingIOError:
                        time.sleep(0.01)
                with open("/proc/%d/status" % relay.pid) as f:
                    rss_kb = int(f.read().split("VmRSS:")[1].split()[0])
                stop_reading.set()
            sys.stderr.write("receiver stalled: the sender got %.1f MB in, relay RSS %.1f MB\n"
                             % (sent / MB, rss_kb / 1024))
            self.assertLess(time.monotonic(), deadline, "the sender never blocked")
            self.assertLess(sent, 64 * MB)
            self.assertLess(rss_kb, 64 * 1024)


if __name__ == "__main__":
    unittest.main()
