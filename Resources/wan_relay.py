#!/usr/bin/python3
"""A delaying TCP relay: a wide-area link between a client and a server on 127.0.0.1.

    python3 Resources/wan_relay.py --to 127.0.0.1:PORT --rtt-ms 80 --mbit 100 [--listen-port 0]

Listens on 127.0.0.1 (a free port unless --listen-port is given), prints that port alone on the
first line of stdout, and relays every accepted connection to --to until SIGTERM or SIGINT.

The link model, per direction (client -> server and server -> client):
  - one shared link: all connections of the relay share --mbit (0: no limit); a chunk of L bytes
    occupies the link for L / bandwidth after the previous chunk of any connection left it;
  - one-way delay: every chunk is delivered rtt/2 after it left the link, in order per connection;
  - connection set-up costs one round trip, as a TCP handshake does: the server sees the
    connection after rtt/2, and the client's first bytes leave only after a whole rtt;
  - bounded buffering: a side is no longer read while more than BDP + 1 MB of its bytes are on
    their way (queued or not yet written), so memory stays bounded and the sender's TCP feels
    the back-pressure;
  - half-close (EOF) reaches the other side after the same delay; a reset aborts the other side.
It models neither loss nor TCP's slow start: a link that is not lossy, with windows wide enough.

Also importable: `with WanRelay(("127.0.0.1", port), rtt_ms=80, mbit=100) as relay: relay.port`.
Standard library only.
"""

import argparse
import asyncio
import collections
import contextlib
import os
import signal
import socket
import struct
import subprocess
import sys

MB = 1024 * 1024
LOOPBACK = "127.0.0.1"
RESET = "reset"


class Link:
    """One direction of the shared link: when it is free again, in the event loop's clock."""

    def __init__(self, mbit):
        self.bytes_per_second = mbit * 1e6 / 8 if mbit > 0 else 0.0
        self.free_at = 0.0
        self.bytes = 0

    def departure(self, now, size):
        """When `size` bytes handed over at `now` have left the link (serialization done)."""
        self.bytes += size
        if not self.bytes_per_second:
            return now
        self.free_at = max(now, self.free_at) + size / self.bytes_per_second
        return self.free_at


class Direction:
    """Bytes read from one side, delivered to the other after the link's delay, in order."""

    def __init__(self, loop, link, delay, limit, source, sink):
        self.loop, self.link, self.delay, self.limit = loop, link, delay, limit
        self.source, self.sink = source, sink  # Side objects
        self.queue = collections.deque()  # (deliver_at, bytes or None for EOF)
        self.queued_bytes = 0
        self.timer = None
        self.eof_delivered = False
        self.reading_paused = False
        self.not_before = 0.0  # no byte leaves before this time (the handshake's round trip)

    def push(self, data):
        now = max(self.loop.time(), self.not_before)
        deliver_at = self.link.departure(now, len(data)) + self.delay
        self.queue.append((deliver_at, data))
        self.queued_bytes += len(data)
        self._schedule()
        self.check_backlog()

    def push_eof(self):
        # After the connection's last byte, whatever the link carries meanwhile.
        last = self.queue[-1][0] if self.queue else (
            max(self.loop.time(), self.not_before) + self.delay)
        self.queue.append((last, None))
        self._schedule()

    def pending(self):
        transport = self.sink.transport
        buffered = transport.get_write_buffer_size() if transport else 0
        return self.queued_bytes + buffered

    def check_backlog(self):
        """Pause reading the source past the limit, resume under half of it."""
        pending = self.pending()
        if not self.reading_paused and pending > self.limit:
            self.reading_paused = True
            self.source.pause_reading()
        elif self.reading_paused and pending <= self.limit // 2:
            self.reading_paused = False
            self.source.resume_reading()

    def _schedule(self):
        if self.timer is None and self.queue and self.sink.transport is not None:
            self.timer = self.loop.call_at(self.queue[0][0], self._flush)

    def _flush(self):
        self.timer = None
        transport = self.sink.transport
        if transport is None or transport.is_closing():
            return
        now = self.loop.time()
        while self.queue and self.queue[0][0] <= now + 0.0002:
            _, data = self.queue.popleft()
            if data is None:
                self.eof_delivered = True
                try:
                    if transport.can_write_eof():
                        transport.write_eof()
                except OSError:
                    # The receiving side is already gone (it closed or was reset).
                    self.sink.connection.abort()
                    return
                self.sink.connection.maybe_close()
                continue
            self.queued_bytes -= len(data)
            transport.write(data)
        self._schedule()
        self.check_backlog()

    def cancel(self):
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.queue.clear()
        self.queued_bytes = 0


class Side(asyncio.Protocol):
    """One TCP end of a relayed connection (the client's or the server's)."""

    def __init__(self, connection, name):
        self.connection, self.name = connection, name
        self.transport = None
        self.outgoing = None  # the Direction reading this side
        self.eof_received_flag = False
        self.read_paused = False

    def connection_made(self, transport):
        self.transport = transport
        if self.read_paused:
            transport.pause_reading()

    def pause_reading(self):
        self.read_paused = True
        if self.transport is not None and not self.transport.is_closing():
            self.transport.pause_reading()

    def resume_reading(self):
        self.read_paused = False
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    def data_received(self, data):
        self.outgoing.push(data)

    def eof_received(self):
        self.eof_received_flag = True
        self.outgoing.push_eof()
        return True  # keep the transport open: the other direction may still carry bytes

    def resume_writing(self):
        # The transport's own buffer drained: the direction writing to us may read again.
        for direction in self.connection.directions:
            if direction.sink is self:
                direction.check_backlog()

    def connection_lost(self, exc):
        self.connection.side_lost(self, exc)


class Connection:
    """A client connection and its connection to the server."""

    def __init__(self, relay):
        self.relay = relay
        loop = relay.loop
        self.client = Side(self, "client")
        self.server = Side(self, "server")
        self.up = Direction(loop, relay.up, relay.delay, relay.limit, self.client, self.server)
        self.down = Direction(loop, relay.down, relay.delay, relay.limit, self.server, self.client)
        self.client.outgoing, self.server.outgoing = self.up, self.down
        self.directions = (self.up, self.down)
        self.closed = False
        # The client may send once the SYN-ACK is back: one round trip after it connected.
        self.up.not_before = loop.time() + 2 * relay.delay

    async def open(self):
        loop = self.relay.loop
        try:
            await asyncio.sleep(self.relay.delay)  # SYN on its way
            await loop.create_connection(lambda: self.server, *self.relay.target)
        except (OSError, asyncio.CancelledError):
            self.abort(RESET)  # as a refused connection would reach the client
            return
        if self.closed:
            self.abort()
            return
        self.up._schedule()
        self.down._schedule()

    def maybe_close(self):
        if self.up.eof_delivered and self.down.eof_delivered:
            self.close()

    def close(self):
        if self.closed:
            return
        self.closed = True
        for side in (self.client, self.server):
            if side.transport is not None:
                side.transport.close()
        self.relay.connections.discard(self)

    def abort(self, how=None):
        """Drops the connection; how=RESET makes both ends see a reset (RST), not an EOF."""
        self.closed = True
        for direction in self.directions:
            direction.cancel()
        for side in (self.client, self.server):
            if side.transport is None:
                continue
            if how is RESET:
                sock = side.transport.get_extra_info("socket")
                with contextlib.suppress(OSError, AttributeError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            side.transport.abort()
        self.relay.connections.discard(self)

    def side_lost(self, side, exc):
        if self.closed:
            return
        if exc is not None:
            # A reset (or an error): the other side is reset too.
            self.abort(RESET)
            return
        # A clean close without our doing: let what is in flight arrive, then close.
        other = self.server if side is self.client else self.client
        direction = side.outgoing
        if not side.eof_received_flag:
            direction.push_eof()
        # The side that is gone can receive nothing more.
        (self.down if side is self.client else self.up).eof_delivered = True
        if other.transport is None:
            self.abort()
        else:
            self.maybe_close()


class Relay:
    def __init__(self, target, rtt_ms, mbit):
        self.target = target
        self.delay = rtt_ms / 2000.0
        self.up, self.down = Link(mbit), Link(mbit)
        bdp = (mbit * 1e6 / 8) * (rtt_ms / 1000.0) if mbit > 0 else 0
        self.limit = int(bdp + MB)
        self.connections = set()
        self.loop = None
        self.server = None

    async def start(self, port):
        self.loop = asyncio.get_running_loop()
        self.server = await self.loop.create_server(self._accept, LOOPBACK, port)
        return self.server.sockets[0].getsockname()[1]

    def _accept(self):
        connection = Connection(self)
        self.connections.add(connection)
        self.loop.create_task(connection.open())
        return connection.client

    def stop(self):
        self.server.close()
        for connection in list(self.connections):
            connection.abort()


def parse_target(text):
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError("--to needs HOST:PORT, not %r" % text)
    return host, int(port)


async def serve(args):
    relay = Relay(args.to, args.rtt_ms, args.mbit)
    port = await relay.start(args.listen_port)
    sys.stdout.write("%d\n" % port)
    sys.stdout.flush()
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopped.set)
    await stopped.wait()
    relay.stop()
    sys.stderr.write("wan_relay: stopped; %d bytes up, %d bytes down\n"
                     % (relay.up.bytes, relay.down.bytes))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--to", type=parse_target, required=True, help="HOST:PORT to relay to")
    parser.add_argument("--rtt-ms", type=float, default=0.0, help="round-trip time added (ms)")
    parser.add_argument("--mbit", type=float, default=0.0,
                        help="bandwidth per direction shared by all connections (0: no limit)")
    parser.add_argument("--listen-port", type=int, default=0, help="port on 127.0.0.1 (0: free)")
    args = parser.parse_args(argv)
    if args.rtt_ms < 0 or args.mbit < 0:
        parser.error("--rtt-ms and --mbit cannot be negative")
    asyncio.run(serve(args))
    return 0


class WanRelay:
    """The relay as a process of its own: `with WanRelay(target, rtt_ms, mbit) as r: r.port`.

    Stopped by SIGTERM to its PID (then SIGKILL if it does not stop in time).
    """

    def __init__(self, target, rtt_ms, mbit, listen_port=0, start_timeout=10.0):
        self.target, self.rtt_ms, self.mbit = target, rtt_ms, mbit
        self.listen_port, self.start_timeout = listen_port, start_timeout
        self.process = None
        self.port = None

    @property
    def pid(self):
        return self.process.pid if self.process else None

    @property
    def url(self):
        return "http://%s:%d" % (LOOPBACK, self.port)

    def __enter__(self):
        host, port = self.target
        self.process = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--to", "%s:%d" % (host, port),
             "--rtt-ms", str(self.rtt_ms), "--mbit", str(self.mbit),
             "--listen-port", str(self.listen_port)],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, start_new_session=True)
        try:
            line = _read_line(self.process.stdout, self.start_timeout)
            self.port = int(line)
        except (ValueError, TimeoutError):
            self.stop()
            raise RuntimeError("wan_relay did not start (exit %s)" % self.process.poll())
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        with contextlib.suppress(Exception):
            self.process.stdout.close()


def _read_line(stream, timeout):
    """The first line of a pipe, within timeout seconds."""
    import selectors
    selector = selectors.DefaultSelector()
    selector.register(stream, selectors.EVENT_READ)
    try:
        if not selector.select(timeout):
            raise TimeoutError("no line within %.0f s" % timeout)
        return stream.readline().decode().strip()
    finally:
        selector.close()


if __name__ == "__main__":
    sys.exit(main())
