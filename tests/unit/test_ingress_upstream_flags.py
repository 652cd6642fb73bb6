"""The ingress controller, metrics-server and certgen images as ingress-nginx's and
metrics-server's manifests run them: their argv resolved to kins' programs, upstream's flags
accepted (unknown ones named), the ConfigMap keys kins honours, and AdmissionReview answers."""

from __future__ import annotations

import json
import socket
import ssl
import threading
import urllib.request
from pathlib import Path
from typing import Any, cast

import pytest
import yaml_rs

from kins import apps, certgen
from kins._errors import KinsError
from kins.api.networking import Ingress
from kins.apps import system
from kins.apps.flags import FlagError
from kins.ingress.model import IngressConfig
from kins.ingress.options import parse, split_listen, split_ref
from kins.ingress.servers import health_server, review, serve, webhook_server
from kins.ingress.settings import configmap_settings
from kins.ingress.workdir import mount_points, private_dir

DATA = Path(__file__).parents[1] / "data" / "manifests"


def _container(manifest: str, kind: str, name: str) -> dict[str, Any]:
    docs = cast(list[dict[str, Any]], yaml_rs.loads((DATA / manifest).read_text(), parse_datetime=False))
    doc = next(d for d in docs if d and d["kind"] == kind and d["metadata"]["name"] == name)
    (c,) = doc["spec"]["template"]["spec"]["containers"]
    return cast(dict[str, Any], c)


def _expanded(args: list[str]) -> list[str]:
    return [a.replace("$(POD_NAMESPACE)", "ingress-nginx") for a in args]


def test_the_manifests_images_resolve_to_kins_programs() -> None:
    c = _container("ingress-nginx-baremetal-deploy.yaml", "Deployment", "ingress-nginx-controller")
    app = apps.resolve(c["image"], c.get("command", ()), _expanded(c["args"]))
    assert app is not None and app.main is system.ingress_main
    assert app.argv[0] == "--election-id=ingress-nginx-leader"  # the entrypoint path is dropped
    # The same path as the command is the image's entrypoint too.
    same = apps.resolve(c["image"], ["/nginx-ingress-controller"], ["--ingress-class=nginx"])
    assert same is not None and same.argv == ("--ingress-class=nginx",)
    assert apps.resolve(c["image"], ["/bin/sh"], []) is None
    # The article's add-on: kins' flags, unchanged.
    old = apps.resolve("registry.k8s.io/ingress-nginx/controller:v1.9.4", (), ["--dir", "/etc/nginx"])
    assert old is not None and old.argv == ("--dir", "/etc/nginx")
    for job in ("ingress-nginx-admission-create", "ingress-nginx-admission-patch"):
        c = _container("ingress-nginx-baremetal-deploy.yaml", "Job", job)
        app = apps.resolve(c["image"], (), c["args"])
        assert app is not None and app.main is system.certgen_main and app.argv[0] in ("create", "patch")
    c = _container("metrics-server-components.yaml", "Deployment", "metrics-server")
    app = apps.resolve(c["image"], (), c["args"])
    assert app is not None and app.main is system.metrics_server_main


def test_api_args_prefer_the_system_pods_socket_then_the_service_account(tmp_path: Path) -> None:
    assert system.api_args({"KINS_API": "unix:/s", "KINS_TOKEN_FILE": "/t"}) == [
        "--api", "unix:/s", "--token-file", "/t"
    ]  # fmt: skip
    sa = tmp_path / "sa"
    sa.mkdir()
    env = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    assert system.api_args(env, str(sa)) is None
    (sa / "token").write_text("t")
    (sa / "ca.crt").write_text("ca")
    assert system.api_args(env, str(sa)) == [
        "--api", "https://10.96.0.1:443", "--token-file", f"{sa}/token", "--ca-file", f"{sa}/ca.crt"
    ]  # fmt: skip


def test_upstream_flags_parse() -> None:
    c = _container("ingress-nginx-baremetal-deploy.yaml", "Deployment", "ingress-nginx-controller")
    argv = ["--api", "unix:/s", "--token-file", "/t", *_expanded(c["args"][1:])]
    argv += ["--publish-service=ingress-nginx/ingress-nginx-controller", "--watch-ingress-without-class",
             "--enable-metrics=false", "--update-status=false", "--healthz-port", "10255", "-v=2"]  # fmt: skip
    f = parse(argv)
    assert f.text("configmap") == "ingress-nginx/ingress-nginx-controller"
    assert f.text("election-id") == "ingress-nginx-leader"
    assert f.text("validating-webhook-certificate") == "/usr/local/certificates/cert"
    assert f.flag("watch-ingress-without-class") and not f.flag("update-status")
    assert f.number("healthz-port") == 10255
    assert f.ignored == ("enable-metrics", "v")
    assert split_listen(f.text("validating-webhook"), "validating-webhook") == ("0.0.0.0", 8443)
    assert split_ref(f.text("publish-service"), "publish-service") == ("ingress-nginx", "ingress-nginx-controller")
    # kins' own spellings, as the article's add-on passes them
    old = parse(["--api", "unix:/s", "--token-file", "/t", "--dir", "/etc/nginx", "--class", "nginx"])
    assert old.text("dir") == "/etc/nginx" and old.text("ingress-class") == "nginx"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--no-such-flag=1"], "unknown flag: --no-such-flag"),
        (["--http-port=eighty"], 'invalid argument "eighty" for "--http-port" flag'),
        (["--update-status=maybe"], '"--update-status" flag: expected a boolean'),
        (["stray"], "unexpected argument 'stray'"),
        (["--election-id"], "flag needs an argument: --election-id"),
    ],
)
def test_bad_flags_are_named(argv: list[str], message: str) -> None:
    with pytest.raises(FlagError, match=message.replace("(", r"\(")):
        parse(["--api", "unix:/s", "--token-file", "/t", *argv])
    with pytest.raises(FlagError, match="expected namespace/name"):
        split_ref("nameonly", "configmap")
    with pytest.raises(FlagError, match="expected \\[host\\]:port"):
        split_listen("8443", "validating-webhook")


def test_configmap_keys() -> None:
    cfg, ignored = configmap_settings(
        IngressConfig(),
        {"ssl-redirect": "false", "max-worker-connections": "4096", "use-forwarded-headers": "true"},
    )
    assert not cfg.ssl_redirect and cfg.worker_connections == 4096
    assert ignored == ["use-forwarded-headers"]
    cfg, ignored = configmap_settings(IngressConfig(), {"max-worker-connections": "0", "ssl-redirect": "perhaps"})
    assert cfg.worker_connections == IngressConfig().worker_connections
    assert ignored == ["ssl-redirect (bad value 'perhaps')"]


def test_mount_points_read_mountinfo() -> None:
    info = "36 35 98:0 /mnt1 /etc/nginx rw,noatime master:1 - ext3 /dev/root rw\n37 35 0:5 / /a\\040b rw - tmpfs x rw"
    assert mount_points(info) == {"/etc/nginx", "/a b"}


INGRESS = {
    "metadata": {"name": "web", "namespace": "default"},
    "spec": {"ingressClassName": "nginx", "rules": [{"host": "a.example"}]},
}


def _review(obj: object, kind: str = "Ingress") -> dict[str, Any]:
    request = {"uid": "u-1", "kind": {"group": "networking.k8s.io", "version": "v1", "kind": kind},
               "operation": "CREATE", "object": obj}  # fmt: skip
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}


def test_review_answers_as_upstream() -> None:
    seen: list[Ingress] = []

    def refuse(ing: Ingress) -> tuple[bool, str]:
        seen.append(ing)
        return False, "nginx: [emerg] bad"

    out = review(_review(INGRESS), refuse)
    assert out["kind"] == "AdmissionReview" and out["apiVersion"] == "admission.k8s.io/v1"
    assert out["response"]["uid"] == "u-1" and out["response"]["allowed"] is False
    assert out["response"]["status"]["message"] == "nginx: [emerg] bad"
    assert seen[0].name == "web" and seen[0].namespace == "default"
    assert review(_review(INGRESS), lambda ing: (True, ""))["response"] == {"uid": "u-1", "allowed": True}
    # Not an Ingress: nothing to check.
    assert review(_review({"metadata": {"name": "x"}}, "Service"), refuse)["response"]["allowed"] is True
    with pytest.raises(ValueError):
        review({"kind": "Pod"}, refuse)


def test_webhook_and_health_servers_over_real_sockets(tmp_path: Path) -> None:
    ca, cert, key = certgen.generate(["localhost", "127.0.0.1"])
    (tmp_path / "cert").write_bytes(cert)
    (tmp_path / "key").write_bytes(key)
    (tmp_path / "ca").write_bytes(ca)
    hook = webhook_server("127.0.0.1", 0, str(tmp_path / "cert"), str(tmp_path / "key"), lambda i: (True, ""))
    healthy = threading.Event()
    health = health_server("127.0.0.1", 0, "/healthz", healthy.is_set)
    for s in (hook, health):
        serve(s, "test")
    try:
        ctx = ssl.create_default_context(cafile=str(tmp_path / "ca"))
        # A client that connects and says nothing holds up only itself.
        silent = socket.create_connection(("127.0.0.1", hook.server_address[1]))
        url = f"https://127.0.0.1:{hook.server_address[1]}/networking/v1/ingresses"
        req = urllib.request.Request(url, json.dumps(_review(INGRESS)).encode(), {"Content-Type": "application/json"})
        with urllib.request.urlopen(req, context=ctx, timeout=5) as r:
            assert json.loads(r.read())["response"] == {"uid": "u-1", "allowed": True}
        hurl = f"http://127.0.0.1:{health.server_address[1]}/healthz"
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(hurl, timeout=5)
        assert e.value.code == 500
        healthy.set()
        with urllib.request.urlopen(hurl, timeout=5) as r:
            assert r.read() == b"ok"
    finally:
        silent.close()
        hook.shutdown()
        health.shutdown()


def test_no_dir_outside_a_pod_is_refused() -> None:
    """Run from a shell (the parent shares its mount namespace), the controller will not mount
    over the machine's /etc/nginx."""
    with pytest.raises(KinsError, match="--dir is required outside a pod"):
        private_dir()
