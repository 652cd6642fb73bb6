"""metrics-server's image as kins runs it: its manifest's flags, a certificate made in
--cert-dir, HTTPS /livez and /readyz, and metrics.k8s.io answered from kins' API."""

from __future__ import annotations

import json
import ssl
import threading
import urllib.request
from pathlib import Path

import pytest
from kubectl_bin import tls_api

from kins import metricsserver
from kins.apiserver.auth import ensure_tls
from kins.client import connect
from kins.store.memory import MemoryStore


def test_flags_of_the_manifest_and_unknown_ones(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    token = tmp_path / "token"
    token.write_text("t")
    base = ["--api", "unix:/nonexistent", "--token-file", str(token)]
    assert metricsserver.main([*base, "--kubelet-insecure-tlz"]) == 2
    assert "unknown flag: --kubelet-insecure-tlz" in capsys.readouterr().err
    assert metricsserver.main([*base, "--secure-port=https"]) == 2
    assert 'invalid argument "https" for "--secure-port" flag' in capsys.readouterr().err
    assert metricsserver.main(["--secure-port=10250"]) == 2
    assert "--api and --token-file are required" in capsys.readouterr().err


def test_serves_probes_and_metrics_over_https(tmp_path: Path) -> None:
    with tls_api(MemoryStore(history=100), tmp_path / "state") as api:
        client = connect(api.url, api.token, str(ensure_tls(tmp_path / "state")[0]))
        cert, key = metricsserver.serving_certificate(str(tmp_path / "certs"))
        assert Path(cert).name == "apiserver.crt" and oct(Path(key).stat().st_mode & 0o777) == "0o600"
        # The certificate is kept across restarts of the container (the emptyDir keeps it).
        before = Path(cert).read_bytes()
        assert metricsserver.serving_certificate(str(tmp_path / "certs")) == (cert, key)
        assert Path(cert).read_bytes() == before
        server = metricsserver.make_server(metricsserver.Server(client), "127.0.0.1", 0, cert, key)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE  # as the kubelet probes it
            port = server.server_address[1]

            def get(path: str) -> tuple[int, bytes]:
                try:
                    with urllib.request.urlopen(f"https://127.0.0.1:{port}{path}", context=ctx, timeout=5) as r:
                        return r.status, r.read()
                except urllib.error.HTTPError as e:
                    return e.code, e.read()

            assert get("/livez") == (200, b"ok")
            assert get("/readyz") == (200, b"ok")
            code, body = get("/apis/metrics.k8s.io/v1beta1/namespaces/default/pods?labelSelector=app%3Dx")
            assert code == 200
            listed = json.loads(body)
            assert (listed["kind"], listed["items"]) == ("PodMetricsList", [])
            assert get("/nothing")[0] == 404
        finally:
            server.shutdown()
            client.close()
