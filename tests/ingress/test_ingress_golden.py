"""Golden nginx.conf (and the problems reported) for every case under tests/golden/ingress.

Regenerate with ``KINS_UPDATE_GOLDEN=1 pytest tests/ingress/test_ingress_golden.py``.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from ingress_cases import CASES, GOLDEN, load_case

from kins.ingress import IngressConfig
from kins.ingress.certs import fake_certificate

CFG = IngressConfig(dir="/run/kins/ingress")


def _check(path: Path, text: str) -> None:
    if os.environ.get("KINS_UPDATE_GOLDEN"):
        path.write_text(text)
    assert path.exists(), f"{path} missing: run with KINS_UPDATE_GOLDEN=1"
    assert text == path.read_text()


@pytest.mark.parametrize("case", CASES)
def test_golden_conf(case: str) -> None:
    r = load_case(case).render(CFG)
    _check(GOLDEN / f"{case}.conf", r.conf)
    _check(GOLDEN / f"{case}.warnings", "".join(w + "\n" for w in r.warnings))


@pytest.mark.parametrize("case", CASES)
def test_nginx_accepts(case: str, tmp_path: Path) -> None:
    """Every golden config passes ``nginx -t`` once its directory exists."""
    cfg = IngressConfig(dir=str(tmp_path), default_certificate=fake_certificate(), user=None)
    r = load_case(case).render(cfg)
    for sub in ("logs", "tmp", "certs"):
        (tmp_path / sub).mkdir()
    for p, data in r.files.items():
        Path(p).write_bytes(data)
    conf = tmp_path / "nginx.conf"
    conf.write_text(r.conf)
    proc = subprocess.run(
        ["/usr/sbin/nginx", "-t", "-q", "-e", str(tmp_path / "logs/error.log"), "-p", str(tmp_path), "-c", str(conf)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr


def test_render_for_store_matches_the_golden_text() -> None:
    """The offline entry point renders what the controller would, from a store's objects."""
    from kins.ingress.controller import render_for_store
    from kins.store.memory import MemoryStore

    case = load_case("article")
    store = MemoryStore()
    for obj in [*case.services, *case.slices, *case.secrets, *case.ingresses]:
        store.create(obj)
    r = render_for_store(store, CFG)
    assert r.conf == (GOLDEN / "article.conf").read_text()
    assert [i.key for i in r.model.handled] == ["default/business-manager", "ns-jo/business-user"]
