"""The nginx ingress controller: Ingress objects -> nginx.conf (pure), and the controller
process that keeps a real nginx in step with the API."""

from .model import IngressConfig
from .nginxconf import Rendered, render, render_nginx_conf

__all__ = ["IngressConfig", "Rendered", "render", "render_nginx_conf"]
