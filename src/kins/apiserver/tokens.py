"""ServiceAccount tokens: JWTs signed (ES256) with the cluster's key, as the API server's token
issuer makes them, and their verification.

The key is kept in the state directory (``sa.key``, 0600) so tokens outlive a daemon restart.
Bound tokens (TokenRequest) carry the upstream claims: ``iss``, ``sub``
(``system:serviceaccount:<ns>:<name>``), ``aud``, ``exp``, ``iat``, ``nbf``, ``jti`` and
``kubernetes.io`` (namespace, serviceaccount, and the pod or secret the token is bound to).
Legacy tokens (Secrets of type ``kubernetes.io/service-account-token``) carry the old flat
claims and no expiry.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from .auth import write_private_file

KEY_FILE = "sa.key"
LEGACY_ISSUER = "kubernetes/serviceaccount"
CLOCK_SKEW = 60  # seconds of leeway on nbf and exp, as the API server allows


def issuer(domain: str = "cluster.local") -> str:
    """The issuer (and default audience) of bound tokens: the in-cluster API's URL."""
    return f"https://kubernetes.default.svc.{domain}"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _json_b64(doc: dict[str, Any]) -> str:
    return _b64(json.dumps(doc, separators=(",", ":")).encode())


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SigningKey:
    """An ECDSA P-256 key: signs and verifies ES256 JWTs."""

    def __init__(self, key: ec.EllipticCurvePrivateKey) -> None:
        self.key = key
        der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        # The key id as the API server computes it: the public key's DER, hashed.
        self.kid = _b64(hashlib.sha256(der).digest())

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(ec.generate_private_key(ec.SECP256R1()))

    @classmethod
    def ensure(cls, state_dir: str | os.PathLike[str]) -> SigningKey:
        """The cluster's key from ``<state>/sa.key``, created on first use."""
        path = Path(state_dir) / KEY_FILE
        if path.exists():
            loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
            if isinstance(loaded, ec.EllipticCurvePrivateKey):
                return cls(loaded)
        key = cls.generate()
        pem = key.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        write_private_file(path, pem.decode())
        return key

    def jwk(self) -> dict[str, str]:
        """The public key as a JSON Web Key (what ``/openid/v1/jwks`` lists)."""
        numbers = self.key.public_key().public_numbers()
        return {
            "use": "sig",
            "kty": "EC",
            "kid": self.kid,
            "crv": "P-256",
            "alg": "ES256",
            "x": _b64(numbers.x.to_bytes(32, "big")),
            "y": _b64(numbers.y.to_bytes(32, "big")),
        }

    def sign(self, claims: dict[str, Any]) -> str:
        header = {"alg": "ES256", "kid": self.kid}
        signing_input = f"{_json_b64(header)}.{_json_b64(claims)}"
        der = self.key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return f"{signing_input}.{_b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"

    def verify(self, token: str) -> dict[str, Any] | None:
        """The claims of a token this key signed, or None (not a JWT, another key, tampered)."""
        parts = token.split(".")
        if len(parts) != 3:
            return None
        try:
            header = json.loads(_unb64(parts[0]))
            sig = _unb64(parts[2])
            if not isinstance(header, dict) or header.get("alg") != "ES256" or len(sig) != 64:
                return None
            der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
            self.key.public_key().verify(der, f"{parts[0]}.{parts[1]}".encode(), ec.ECDSA(hashes.SHA256()))
            claims = json.loads(_unb64(parts[1]))
        except (ValueError, InvalidSignature, UnicodeDecodeError):
            return None
        return claims if isinstance(claims, dict) else None


@dataclass(frozen=True)
class Binding:
    """The object a bound token dies with (a Pod or a Secret)."""

    kind: str
    name: str
    uid: str


def bound_claims(
    iss: str,
    audiences: list[str],
    namespace: str,
    sa_name: str,
    sa_uid: str,
    expiration: int,
    bound: Binding | None = None,
    node: tuple[str, str] | None = None,
    now: int | None = None,
) -> dict[str, Any]:
    """The claims of a TokenRequest's token."""
    now = int(time.time()) if now is None else now
    private: dict[str, Any] = {"namespace": namespace, "serviceaccount": {"name": sa_name, "uid": sa_uid}}
    if bound is not None:
        private[bound.kind.lower()] = {"name": bound.name, "uid": bound.uid}
    if node is not None:
        private["node"] = {"name": node[0], "uid": node[1]}
    return {
        "aud": audiences,
        "exp": now + expiration,
        "iat": now,
        "iss": iss,
        "jti": str(uuid.uuid4()),
        "kubernetes.io": private,
        "nbf": now,
        "sub": f"system:serviceaccount:{namespace}:{sa_name}",
    }


def legacy_claims(namespace: str, secret_name: str, sa_name: str, sa_uid: str) -> dict[str, Any]:
    """The claims of a token Secret's token (no expiry, no audience)."""
    return {
        "iss": LEGACY_ISSUER,
        "kubernetes.io/serviceaccount/namespace": namespace,
        "kubernetes.io/serviceaccount/secret.name": secret_name,
        "kubernetes.io/serviceaccount/service-account.name": sa_name,
        "kubernetes.io/serviceaccount/service-account.uid": sa_uid,
        "sub": f"system:serviceaccount:{namespace}:{sa_name}",
    }
