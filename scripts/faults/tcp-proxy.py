#!/usr/bin/env python3
"""A TCP proxy that injects network faults, for Eddy's fault tests (stdlib only).

    tcp-proxy.py --listen 127.0.0.1:P [--target 127.0.0.1:Q] --control 127.0.0.1:C [--mode MODE]
    tcp-proxy.py --control 127.0.0.1:C --send "drop 10"     # a client: one command, prints the reply

It forwards connections to --listen on to --target. A line-based TCP control port switches
its mode; each command is one line, answered with one line ("ok MODE ..." or "error ..."):

    pass                  forward bytes both ways
    drop [SECONDS]        reset (RST) every open connection, and reset each new one right
                          after accepting it: the peer sees "connection reset", as when a
                          firewall or a failing switch cuts it
    blackhole [SECONDS]   accept, read and discard, never answer and never close: a peer
                          that hangs (a stuck server, a half-dead network path)
    status                the mode and the number of open connections

With SECONDS, the proxy goes back to pass after that many seconds. Connections that were
blackholed are reset when the blackhole ends: the bytes it swallowed make them useless.
Without --target the proxy only blackholes (a server that accepts but never answers).

One line per mode change goes to stdout: "<UTC time> tcp-proxy LISTEN -> TARGET: MODE".

Kafka clients reconnect to the broker's advertised address, not to the bootstrap one, so a
broker behind this proxy must advertise the proxy's address (Tansu: --listener-url
tcp://127.0.0.1:REAL --advertised-listener-url tcp://127.0.0.1:PROXY).
"""
import argparse
import asyncio
import datetime
import socket
import struct
import sys


def address(text):
    host, _, port = text.rpartition(":")
    return host, int(port)


def reset(writer):
    """Closes with RST instead of FIN: SO_LINGER on, zero timeout."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    writer.transport.abort()


class Connection:
    def __init__(self, client):
        self.client = client
        self.upstream = None
        self.blackholed = False

    def reset(self):
        for writer in (self.client, self.upstream):
            if writer is not None:
                reset(writer)


class Proxy:
    def __init__(self, listen, target, mode):
        self.listen = listen
        self.target = target
        self.mode = mode
        self.connections = set()
        self.timer = None
        self.name = f"{listen[0]}:{listen[1]} -> " + (f"{target[0]}:{target[1]}" if target else "nowhere")

    def set_mode(self, mode, seconds=None):
        if mode not in ("pass", "drop", "blackhole"):
            raise ValueError(f"unknown mode {mode!r}")
        if mode == "pass" and self.target is None:
            raise ValueError("without --target the proxy can only blackhole or drop")
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.mode = mode
        for connection in list(self.connections):
            if mode == "drop" or (mode == "pass" and connection.blackholed):
                connection.reset()
        if seconds:
            self.timer = asyncio.get_running_loop().call_later(seconds, self.set_mode, "pass")
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        print(f"{now} tcp-proxy {self.name}: {mode}" + (f" for {seconds:g} s" if seconds else ""), flush=True)

    async def serve_client(self, reader, writer):
        if self.mode == "drop":
            reset(writer)
            return
        connection = Connection(writer)
        self.connections.add(connection)
        try:
            if self.mode == "blackhole" or self.target is None:
                connection.blackholed = True
                while await reader.read(65536):
                    pass
                return
            try:
                up_reader, connection.upstream = await asyncio.open_connection(*self.target)
            except OSError:
                reset(writer)  # the target is down: the client sees a reset, as a refused connect
                return
            await asyncio.gather(self.pump(reader, connection.upstream, connection),
                                 self.pump(up_reader, writer, connection))
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            self.connections.discard(connection)
            if connection.blackholed:
                connection.reset()
            else:
                writer.close()
            if connection.upstream is not None and not connection.upstream.is_closing():
                connection.upstream.close()

    async def pump(self, source, destination, connection):
        try:
            while data := await source.read(65536):
                if self.mode == "blackhole":
                    connection.blackholed = True
                    continue
                destination.write(data)
                await destination.drain()
            if destination.can_write_eof() and not destination.is_closing():
                destination.write_eof()
        except OSError:
            connection.reset()

    async def serve_control(self, reader, writer):
        try:
            while line := await reader.readline():
                words = line.decode().split()
                if not words:
                    continue
                try:
                    if words[0] == "status":
                        reply = f"ok {self.mode} {len(self.connections)} connection(s)"
                    else:
                        self.set_mode(words[0], float(words[1]) if len(words) > 1 else None)
                        reply = f"ok {self.mode}"
                except (ValueError, IndexError) as error:
                    reply = f"error {error}"
                writer.write((reply + "\n").encode())
                await writer.drain()
        finally:
            writer.close()


async def serve(args):
    proxy = Proxy(address(args.listen), address(args.target) if args.target else None,
                  args.mode if args.target else "blackhole")
    listen_host, listen_port = proxy.listen
    control_host, control_port = address(args.control)
    await asyncio.start_server(proxy.serve_client, listen_host, listen_port, reuse_address=True)
    control = await asyncio.start_server(proxy.serve_control, control_host, control_port, reuse_address=True)
    print(f"tcp-proxy {proxy.name}: {proxy.mode} (control {args.control})", flush=True)
    await control.serve_forever()


def send(control, command):
    with socket.create_connection(address(control), timeout=10) as sock:
        sock.sendall((command + "\n").encode())
        reply = sock.makefile().readline().strip()
    print(reply)
    return 0 if reply.startswith("ok") else 1


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listen")
    parser.add_argument("--target")
    parser.add_argument("--control", required=True)
    parser.add_argument("--mode", default="pass", choices=["pass", "drop", "blackhole"])
    parser.add_argument("--send", metavar="COMMAND", help="send COMMAND to a running proxy and print its reply")
    args = parser.parse_args()
    if args.send:
        return send(args.control, args.send)
    if not args.listen:
        parser.error("--listen is required to run a proxy")
    try:
        asyncio.run(serve(args))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
