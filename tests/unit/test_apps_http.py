"""The built-in apps answering real HTTP and UDP on 127.0.0.1 (no root)."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Awaitable, Callable

import pytest

from kins.apps import web
from kins.apps.agnhost import Netexec, UdpServer
from kins.apps.shop import BusinessManager, DataProduct

HOST = socket.gethostname()


async def serve(handler: web.Handler) -> tuple[asyncio.Server, int]:
    server = await web.serve_http(handler, 0, "127.0.0.1")
    return server, server.sockets[0].getsockname()[1]


def run(coro: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(coro(), 30))


def test_netexec_endpoints() -> None:
    async def main() -> None:
        app = Netexec()
        server, port = await serve(app.handle)
        loop = asyncio.get_running_loop()
        udp, _ = await loop.create_datagram_endpoint(lambda: UdpServer(HOST), local_addr=("127.0.0.1", 0))
        udp_port = udp.get_extra_info("sockname")[1]
        try:
            r = await web.http_get("127.0.0.1", port, "/hostname")
            assert (r.status, r.text()) == (200, HOST)
            assert (await web.http_get("127.0.0.1", port, "/hostName")).text() == HOST
            r = await web.http_get("127.0.0.1", port, "/clientip")
            ip, _, cport = r.text().rpartition(":")
            assert ip == "127.0.0.1" and int(cport) > 0
            r = await web.http_get("127.0.0.1", port, "/echo?msg=hello%20there")
            assert (r.status, r.text()) == (200, "hello there")
            r = await web.http_get("127.0.0.1", port, "/echo?msg=gone&code=410")
            assert (r.status, r.text()) == (410, "gone")
            assert (await web.http_get("127.0.0.1", port, "/healthz")).status == 412  # UDP not started by run()
            assert (await web.http_get("127.0.0.1", port, "/anything")).text().startswith("NOW: ")
            r = await web.http_get("127.0.0.1", port, "/redirect?location=/echo%3Fmsg%3Dx&code=307")
            assert (r.status, r.headers["location"]) == (307, "/echo?msg=x")

            # /dial to itself over HTTP and to the UDP server.
            r = await web.http_get("127.0.0.1", port, f"/dial?host=127.0.0.1&port={port}&request=hostname&tries=2")
            assert (r.status, json.loads(r.body)) == (200, {"responses": [HOST, HOST]})
            r = await web.http_get(
                "127.0.0.1", port, f"/dial?host=localhost&port={udp_port}&request=echo%20Hi&protocol=udp"
            )
            assert (r.status, json.loads(r.body)) == (200, {"responses": ["hi"]})
            r = await web.http_get(
                "127.0.0.1", port, f"/dial?host=127.0.0.1&port={port}&request=echo%3Fmsg%3Dpong&protocol=HTTP"
            )
            assert json.loads(r.body) == {"responses": ["pong"]}
            # Errors: as agnhost, 400 for bad parameters, 417 when the last try failed.
            with socket.socket() as closed:
                closed.bind(("127.0.0.1", 0))
                dead = closed.getsockname()[1]
            r = await web.http_get("127.0.0.1", port, f"/dial?host=127.0.0.1&port={dead}&request=hostname")
            body = json.loads(r.body)
            assert r.status == 417 and list(body) == ["errors"]
            assert body["errors"][0].endswith("connect: connection refused")
            for bad in (
                "/dial?host=127.0.0.1&port=1",
                "/dial?host=127.0.0.1&port=1&request=x&protocol=sctp",
                "/dial?host=127.0.0.1&port=1&request=x&tries=many",
                "/dial?host=127.0.0.1&port=abc&request=x",
            ):
                assert (await web.http_get("127.0.0.1", port, bad)).status == 400, bad

            r = await web.http_get("127.0.0.1", port, "/shell?cmd=echo%20out%3B%20exit%203")
            assert (r.status, json.loads(r.body)) == (417, {"output": "out\n", "error": "exit status 3"})
            r = await web.http_get("127.0.0.1", port, "/exit?code=7&wait=10ms")
            assert r.status == 200
            assert await asyncio.wait_for(app.exit_code, 5) == 7
        finally:
            udp.close()
            server.close()

    run(main)


def test_keep_alive_and_bad_requests() -> None:
    async def main() -> None:
        async def hello(req: web.Request) -> web.Response:
            return web.Response.text(f"{req.method} {req.path} {req.arg('a')} {len(req.body)}")

        server, port = await serve(hello)
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /x?a=1 HTTP/1.1\r\nHost: h\r\n\r\nPOST /y HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc")
            await writer.drain()
            first = await reader.readuntil(b"GET /x 1 0")
            assert first.startswith(b"HTTP/1.1 200 OK\r\n") and b"Content-Length: 10\r\n" in first
            second = await reader.readuntil(b"POST /y  3")
            assert second.startswith(b"HTTP/1.1 200 OK\r\n")
            writer.write(b"garbage\r\n\r\n")
            rest = await reader.read()
            assert rest.startswith(b"HTTP/1.1 400 Bad Request\r\n") and b"Connection: close" in rest
            writer.close()
        finally:
            server.close()

    run(main)


def test_client_reads_chunked_bodies() -> None:
    async def main() -> None:
        async def chunked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(chunked, "127.0.0.1", 0)
        try:
            r = await web.http_get("127.0.0.1", server.sockets[0].getsockname()[1], "/")
            assert r.text() == "hello world"
        finally:
            server.close()

    run(main)


def test_business_manager_and_data_product() -> None:
    async def main() -> None:
        dp_server, dp_port = await serve(DataProduct({}).handle)
        bm = BusinessManager({"DATA_PRODUCT_URL": f"http://localhost:{dp_port}/", "POD_IP": "10.1.2.3"})
        bm_server, bm_port = await serve(bm.handle)
        try:
            r = await web.http_get("127.0.0.1", dp_port, "/")
            body = json.loads(r.body)
            assert (body["service"], body["pod"], body["podIP"]) == ("data-product", HOST, "127.0.0.1")
            assert body["products"]
            r = await web.http_get("127.0.0.1", bm_port, "/api/v1/product/list")
            body = json.loads(r.body)
            assert r.status == 200
            assert body["businessManager"] == {"pod": HOST, "podIP": "10.1.2.3"}
            assert body["dataProduct"] == {"pod": HOST, "podIP": "127.0.0.1"}
            assert [p["name"] for p in body["products"]] == ["keyboard", "monitor", "mouse"]
            assert json.loads((await web.http_get("127.0.0.1", bm_port, "/")).body)["service"] == "business-manager"
            assert (await web.http_get("127.0.0.1", bm_port, "/healthz")).text() == "ok"
            assert (await web.http_get("127.0.0.1", bm_port, "/nope")).status == 404
        finally:
            dp_server.close()
        # data-product gone: business-manager answers 502 and says why.
        try:
            r = await web.http_get("127.0.0.1", bm_port, "/api/v1/product/list")
            assert r.status == 502 and f"localhost:{dp_port}" in json.loads(r.body)["error"]
        finally:
            bm_server.close()

    run(main)
    with pytest.raises(ValueError, match="no host"):
        BusinessManager({"DATA_PRODUCT_URL": "not a url"})
    assert BusinessManager({}).upstream_host == "data-product" and BusinessManager({}).upstream_port == 50051
