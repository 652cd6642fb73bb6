"""agnhost (registry.k8s.io/e2e-test-images/agnhost) subcommands that kins runs in-process.

``netexec`` follows agnhost's documented behaviour: HTTP endpoints /, /clientip, /dial, /echo,
/exit, /healthz, /hostname (/hostName), /redirect, /shell, /shutdown, and a UDP server answering
``hostname``, ``echo <msg>`` and ``clientip``. ``serve-hostname``, ``connect`` (the NetworkPolicy
e2e tests' prober) and ``pause`` are there too.
"""

from __future__ import annotations

import asyncio
import datetime
import errno
import os
import re
import signal
import socket
import sys
from collections.abc import Sequence
from typing import cast

from kins.apps.flags import FlagError, parse_flags
from kins.apps.web import Request, Response, host_port, http_get, log, make_request, serve_http, udp_request

NETEXEC_FLAGS: dict[str, bool | int | str] = {
    "http-port": 8080,
    "udp-port": 8081,
    "sctp-port": -1,
    "tls-cert-file": "",
    "tls-private-key-file": "",
    "http-override": "",
    "udp-listen-addresses": "",
}

_DURATION = re.compile(r"(\d+(?:\.\d*)?)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """Seconds in a Go duration string (``1.5s``, ``300ms``, ``1m30s``, ``0``)."""
    if text in ("", "0"):
        return 0.0
    pos, total = 0, 0.0
    for m in _DURATION.finditer(text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos != len(text):
        raise ValueError(f"invalid duration {text!r}")
    return total


def udp_answer(text: str, client: tuple[str, int], hostname: str) -> str | None:
    """The answer of agnhost's UDP server to one datagram (None: unknown command, no answer)."""
    cmd = text.strip().lower()
    if cmd == "hostname":
        return hostname
    if cmd.startswith("echo "):
        return cmd.split(" ", 1)[1]
    if cmd == "clientip":
        return host_port(*client)
    return None


class Netexec:
    """One netexec server; ``handle`` is the HTTP entry point, ``exit_code`` resolves on /exit."""

    def __init__(self, http_port: int = 8080, udp_port: int = 8081, udp_addresses: Sequence[str] = ("",)) -> None:
        self.http_port = http_port
        self.udp_port = udp_port
        self.udp_addresses = list(udp_addresses)
        self.ready = False
        self.override = ""
        self._exit: asyncio.Future[int] | None = None

    @property
    def exit_code(self) -> asyncio.Future[int]:
        if self._exit is None:
            self._exit = asyncio.get_running_loop().create_future()
        return self._exit

    @staticmethod
    def hostname() -> str:
        return socket.gethostname()

    async def handle(self, req: Request) -> Response:
        if self.override:
            req = make_request("GET", self.override, req.headers, req.client, req.local)
        route = _ROUTES.get(req.path, Netexec.root)
        return await route(self, req)

    async def root(self, req: Request) -> Response:
        log("GET /")
        return Response.text(f"NOW: {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M:%S.%f %z %Z}")

    async def clientip(self, req: Request) -> Response:
        log("GET /clientip")
        return Response.text(host_port(*req.client))

    async def hostname_route(self, req: Request) -> Response:
        log(f"GET {req.path}")
        return Response.text(self.hostname())

    async def healthz(self, req: Request) -> Response:
        log("GET /healthz")
        # agnhost reports ready once its UDP server listens (412 otherwise, even without UDP).
        return Response(200 if self.ready else 412)

    async def echo(self, req: Request) -> Response:
        msg, code = req.arg("msg"), req.arg("code")
        log(f"GET /echo?msg={msg}&code={code}")
        if not code:
            return Response.text(msg)
        try:
            return Response.text(msg, int(code))
        except ValueError:
            return Response.text(f"argument 'code' must be an integer or empty, got {code!r}\n")

    async def redirect(self, req: Request) -> Response:
        location, code = req.arg("location"), req.arg("code")
        try:
            status = int(code) if code else 302
        except ValueError:
            return Response.text(f"argument 'code' must be an integer or empty, got {code!r}\n")
        return Response(status, headers={"Location": location})

    async def exit(self, req: Request) -> Response:
        code_s, wait_s, timeout_s = req.arg("code"), req.arg("wait"), req.arg("timeout")
        log(f"GET /exit?code={code_s}&timeout={timeout_s}&wait={wait_s}")
        try:
            code = int(code_s) if code_s else 0
        except ValueError:
            return Response.text(f"argument 'code' must be an integer [0-127] or empty, got {code_s!r}\n")
        try:
            wait = parse_duration(wait_s)
        except ValueError:
            return Response.text(f"argument 'wait' must be a valid golang duration or empty, got {wait_s!r}\n")
        loop = asyncio.get_running_loop()
        # Answer first, then leave: the client sees the connection close as the server exits.
        loop.call_later(max(wait, 0.05), self._finish, code)
        return Response(200)

    async def shutdown(self, req: Request) -> Response:
        log("GET /shutdown")
        asyncio.get_running_loop().call_later(0.05, self._finish, 0)
        return Response(200)

    def _finish(self, code: int) -> None:
        if not self.exit_code.done():
            self.exit_code.set_result(code)

    async def shell(self, req: Request) -> Response:
        cmd = req.arg("shellCommand") or req.arg("cmd")
        log(f"GET /shell?cmd={cmd}")
        proc = await asyncio.create_subprocess_exec(
            "/bin/sh", "-c", cmd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        out, _ = await proc.communicate()
        result: dict[str, str] = {}
        if out:
            result["output"] = out.decode(errors="replace")
        if proc.returncode:
            result["error"] = f"exit status {proc.returncode}"
        return Response.json(result, 417 if proc.returncode else 200)

    async def dial(self, req: Request) -> Response:
        host, port, request = req.arg("host"), req.arg("port"), req.arg("request")
        protocol, tries_s = req.arg("protocol").lower(), req.arg("tries")
        log(f"GET /dial?host={host}&protocol={protocol}&port={port}&request={request}&tries={tries_s}")
        try:
            tries = int(tries_s) if tries_s else 1
        except ValueError:
            return Response.text(f"tries parameter is invalid. {tries_s!r} is not an integer\n", 400)
        if not request:
            return Response.text("request parameter not specified.\n", 400)
        if protocol not in ("", "http", "udp"):
            return Response.text(f"unsupported protocol. {protocol}\n", 400)
        kind = socket.SOCK_DGRAM if protocol == "udp" else socket.SOCK_STREAM
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, int(port), type=kind)
            ip, pnum = str(infos[0][4][0]), int(infos[0][4][1])
        except (OSError, ValueError, IndexError) as exc:
            return Response.text(f"host and/or port param are invalid. {exc}\n", 400)
        responses: list[str] = []
        errors: list[str] = []
        last = ""
        for _ in range(tries):
            try:
                if protocol == "udp":
                    last = await _dial_udp(request, ip, pnum)
                else:
                    last = await _dial_http(request, ip, pnum)
                responses.append(last)
            except Exception as exc:
                last = ""
                errors.append(str(exc))
        out: dict[str, list[str]] = {}
        # As agnhost: "responses" is present only when the last try produced a non-empty answer.
        if last:
            out["responses"] = responses
        if errors:
            out["errors"] = errors
        return Response.json(out, 200 if last else 417)

    async def run(self) -> int:
        """Serve until /exit or /shutdown; returns the exit code asked for."""
        loop = asyncio.get_running_loop()
        if self.udp_port != -1:
            for address in self.udp_addresses:
                await loop.create_datagram_endpoint(
                    lambda: UdpServer(self.hostname), local_addr=(address or "0.0.0.0", self.udp_port)
                )
                log(f"Started UDP server on port {address} {self.udp_port}")
            self.ready = True
        server = await serve_http(self.handle, self.http_port)
        log(f"Started HTTP server on port {self.http_port}")
        code = await self.exit_code
        server.close()
        return code


_ROUTES = {
    "/": Netexec.root,
    "/clientip": Netexec.clientip,
    "/dial": Netexec.dial,
    "/echo": Netexec.echo,
    "/exit": Netexec.exit,
    "/healthz": Netexec.healthz,
    "/hostname": Netexec.hostname_route,
    "/hostName": Netexec.hostname_route,
    "/redirect": Netexec.redirect,
    "/shell": Netexec.shell,
    "/shutdown": Netexec.shutdown,
}


async def _dial_http(request: str, ip: str, port: int) -> str:
    path = "/" + request.lstrip("/")
    try:
        reply = await http_get(ip, port, path, timeout=5.0)
    except TimeoutError:
        raise RuntimeError(f'Get "http://{host_port(ip, port)}{path}": timeout awaiting response') from None
    except OSError as exc:
        reason = f"dial tcp {host_port(ip, port)}: connect: {os.strerror(exc.errno).lower()}" if exc.errno else exc
        raise RuntimeError(f'Get "http://{host_port(ip, port)}{path}": {reason}') from None
    except (ValueError, asyncio.IncompleteReadError) as exc:
        raise RuntimeError(f'Get "http://{host_port(ip, port)}{path}": {exc}') from None
    return reply.text()


async def _dial_udp(request: str, ip: str, port: int) -> str:
    try:
        data = await udp_request(ip, port, request.encode(), timeout=5.0)
    except TimeoutError:
        raise RuntimeError("reading from udp connection failed. err:'i/o timeout'") from None
    except OSError as exc:
        raise RuntimeError(f"reading from udp connection failed. err:'{exc}'") from None
    if not data:
        raise RuntimeError("reading from udp connection failed. err:'empty answer'")
    return data.decode(errors="replace")


class UdpServer(asyncio.DatagramProtocol):
    def __init__(self, hostname: object) -> None:
        self._hostname = hostname
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        client = (str(addr[0]), int(addr[1]))
        name = self._hostname() if callable(self._hostname) else str(self._hostname)
        answer = udp_answer(data.decode(errors="replace"), client, name)
        if answer is None:
            if data.strip():
                log(f"Unknown UDP command received from {host_port(*client)}: {data.decode(errors='replace')}")
            return
        if self.transport is not None:
            self.transport.sendto(answer.encode(), addr)


def netexec_main(argv: list[str]) -> int:
    try:
        opts, _ = parse_flags(argv, NETEXEC_FLAGS)
    except FlagError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 2
    if opts["tls-cert-file"] or int(opts["sctp-port"]) != -1:
        print("Error: kins' netexec serves plain HTTP and UDP only (no TLS, no SCTP)", file=sys.stderr)
        return 2
    addresses = [a for a in str(opts["udp-listen-addresses"]).split(",") if a] or [""]
    app = Netexec(int(opts["http-port"]), int(opts["udp-port"]), addresses)
    app.override = str(opts["http-override"])
    return asyncio.run(app.run())


SERVE_HOSTNAME_FLAGS: dict[str, bool | int | str] = {
    "tcp": False,
    "udp": False,
    "http": True,
    "close": False,
    "port": 9376,
}


def serve_hostname_main(argv: list[str]) -> int:
    try:
        opts, _ = parse_flags(argv, SERVE_HOSTNAME_FLAGS)
    except FlagError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 2
    if opts["http"] and (opts["tcp"] or opts["udp"]):
        print("Can't set both --http and --tcp/--udp", file=sys.stderr)
        return 1
    if not (opts["http"] or opts["tcp"] or opts["udp"]):
        print("Must set either --http, --tcp or --udp", file=sys.stderr)
        return 1
    return asyncio.run(
        _serve_hostname(
            int(opts["port"]), bool(opts["http"]), bool(opts["tcp"]), bool(opts["udp"]), bool(opts["close"])
        )
    )


async def _serve_hostname(port: int, http: bool, tcp: bool, udp: bool, close: bool) -> int:
    loop = asyncio.get_running_loop()
    name = socket.gethostname()
    if http:

        async def answer(req: Request) -> Response:
            return Response(200, name.encode(), headers={"Connection": "close"} if close else {})

        await serve_http(answer, port)
    if tcp:

        async def one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(name.encode())
            await writer.drain()
            writer.close()

        await asyncio.start_server(one, None, port, reuse_address=True)
    if udp:
        await loop.create_datagram_endpoint(lambda: _HostnameUdp(name), local_addr=("0.0.0.0", port))
    log(f"Serving on port {port}.")
    await loop.create_future()  # forever
    return 0


class _HostnameUdp(asyncio.DatagramProtocol):
    def __init__(self, name: str) -> None:
        self.name = name.encode()
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        if self.transport is not None:
            self.transport.sendto(self.name, addr)


CONNECT_FLAGS: dict[str, bool | int | str] = {
    "timeout": "0",
    "protocol": "tcp",
    "udp-data": "hostname",
    "sctp-data": "hostname",
}
IPPROTO_SCTP = 132


class ConnectFailed(Exception):
    """One failed attempt: the message is the line agnhost prints (``TIMEOUT``, ``REFUSED: ...``)."""


def split_host_port(dest: str) -> tuple[str, int]:
    """Go's ``net.SplitHostPort`` plus a numeric port (``[v6]:port`` too); ValueError as Go words it."""
    if dest.startswith("["):
        host, sep, rest = dest[1:].partition("]")
        if not sep:
            raise ValueError(f"address {dest}: missing ']' in address")
        if not rest.startswith(":"):
            raise ValueError(f"address {dest}: missing port in address")
        port = rest[1:]
    else:
        host, sep, port = dest.rpartition(":")
        if not sep:
            raise ValueError(f"address {dest}: missing port in address")
        if ":" in host:
            raise ValueError(f"address {dest}: too many colons in address")
    if not port.isdigit() or int(port) > 65535:
        raise ValueError(f"address {dest}: invalid port")
    return host, int(port)


def _resolve(host: str, port: int, kind: int) -> tuple[int, tuple[str, int]]:
    try:
        info = socket.getaddrinfo(host or None, port, type=kind)[0]
    except (OSError, UnicodeError) as exc:
        raise ConnectFailed(f"DNS: lookup {host}: {exc}") from None
    return info[0], (str(info[4][0]), int(info[4][1]))


def _strerror(exc: OSError) -> str:
    return os.strerror(exc.errno).lower() if exc.errno else str(exc)


def connect_tcp(dest: str, timeout: float) -> None:
    try:
        host, port = split_host_port(dest)
    except ValueError as exc:
        raise ConnectFailed(f"UNKNOWN: {exc}") from None
    family, addr = _resolve(host, port, socket.SOCK_STREAM)
    s = socket.socket(family, socket.SOCK_STREAM)
    try:
        s.settimeout(timeout or None)
        s.connect(addr)
    except TimeoutError:
        raise ConnectFailed("TIMEOUT") from None
    except ConnectionRefusedError:
        raise ConnectFailed("REFUSED") from None
    except OSError as exc:
        raise ConnectFailed(f"OTHER: dial tcp {dest}: connect: {_strerror(exc)}") from None
    finally:
        s.close()


def connect_udp(dest: str, timeout: float, data: str) -> None:
    try:
        host, port = split_host_port(dest)
    except ValueError as exc:
        raise ConnectFailed(f"DNS: {exc}") from None
    family, addr = _resolve(host, port, socket.SOCK_DGRAM)
    s = socket.socket(family, socket.SOCK_DGRAM)
    where = f"udp {host_port(*addr)}"
    try:
        try:
            s.connect(addr)
        except OSError as exc:
            raise ConnectFailed(f"OTHER: dial {where}: {_strerror(exc)}") from None
        local = host_port(*s.getsockname()[:2])
        s.settimeout(timeout or None)
        try:
            s.send(f"{data}\n".encode())
        except OSError as exc:
            raise ConnectFailed(_udp_error(f"write udp {local}->{host_port(*addr)}", exc)) from None
        try:
            got = s.recv(1024)
        except OSError as exc:
            raise ConnectFailed(_udp_error(f"read udp {local}->{host_port(*addr)}", exc)) from None
        if not got:
            raise ConnectFailed(
                "OTHER: No data received from the server. Cannot guarantee the server received the request."
            )
    finally:
        s.close()


def _udp_error(op: str, exc: OSError) -> str:
    """agnhost's ``parseUDPErrorAndExit``: TIMEOUT, REFUSED or UNKNOWN, with Go's error text."""
    if isinstance(exc, TimeoutError):
        return f"TIMEOUT: {op}: i/o timeout"
    if exc.errno == errno.ECONNREFUSED:
        return f"REFUSED: {op}: connection refused"
    return f"UNKNOWN: {op}: {_strerror(exc)}"


def connect_sctp(dest: str, timeout: float, data: str) -> None:
    try:
        host, port = split_host_port(dest)
    except ValueError as exc:
        raise ConnectFailed(f"DNS: {exc}") from None
    family, addr = _resolve(host, port, socket.SOCK_STREAM)
    try:
        s = socket.socket(family, socket.SOCK_STREAM, IPPROTO_SCTP)
    except OSError as exc:
        raise ConnectFailed(f"OTHER: {_strerror(exc)}") from None
    try:
        s.settimeout(timeout or None)
        s.connect(addr)
        s.send(f"{data}\n".encode())
        s.recv(1024)
    except TimeoutError:
        raise ConnectFailed("TIMEOUT") from None
    except OSError as exc:
        raise ConnectFailed(f"OTHER: {_strerror(exc)}") from None
    finally:
        s.close()


def connect_main(argv: list[str]) -> int:
    """``agnhost connect HOST:PORT [--timeout=D] [--protocol=tcp|udp|sctp]``: exit 0 when the
    connection (for UDP and SCTP: a request and its answer) succeeds, else one line on stderr
    starting with UNKNOWN, TIMEOUT, DNS, REFUSED or OTHER, and exit 1."""
    try:
        opts, args = parse_flags(argv, CONNECT_FLAGS)
        timeout = parse_duration(str(opts["timeout"]))
    except (FlagError, ValueError) as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    if len(args) != 1:
        print(f"Error: accepts 1 arg(s), received {len(args)}", file=sys.stderr)
        return 1
    protocol = str(opts["protocol"])
    try:
        if protocol in ("", "tcp"):
            connect_tcp(args[0], timeout)
        elif protocol == "udp":
            connect_udp(args[0], timeout, str(opts["udp-data"]))
        elif protocol == "sctp":
            connect_sctp(args[0], timeout, str(opts["sctp-data"]))
        else:
            # agnhost's own (unspaced) wording: fmt.Fprint(os.Stderr, "Unsupported protocol\n", protocol)
            sys.stderr.write(f"Unsupported protocol\n{protocol}")
            return 1
    except ConnectFailed as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


def pause_main(argv: list[str]) -> int:
    """Sleep until SIGTERM/SIGINT, then exit 0 (as the pause image does)."""

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while True:
        signal.pause()
