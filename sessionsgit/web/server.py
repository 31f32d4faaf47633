"""Starting the viewer: the bind check (loopback unless a host is asked for explicitly) and a
threaded WSGI server."""

from __future__ import annotations

import ipaddress
import socket
import threading
import webbrowser
from pathlib import Path
from typing import Callable

from werkzeug.serving import make_server

from ..errors import SessionsGitError
from .app import LOCAL_HOSTS, create_app

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8765


class ViewerError(SessionsGitError):
    """The viewer cannot start as asked (a non-local bind not asked for explicitly)."""


def is_local(host: str) -> bool:
    """Whether ``host`` is a loopback name or address."""
    if host in LOCAL_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _check_free(host: str, port: int) -> None:
    """Fail with one line when the address can't be listened on (werkzeug would print a
    paragraph and exit)."""
    if port == 0:
        return
    try:
        family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
        with socket.create_server((host.strip("[]"), port), family=family, reuse_port=False):
            pass
    except OSError as exc:
        raise ViewerError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def serve(repo: str | Path, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
          allow_remote: bool = False, open_browser: bool = False,
          ready: Callable[[str], None] | None = None) -> None:
    """Serve the viewer until interrupted. A host that is not loopback is refused unless
    ``allow_remote`` (the CLI sets it only when ``--host`` is given explicitly)."""
    local = is_local(host)
    if not local and not allow_remote:
        raise ViewerError(f"refusing to listen on {host}: not a local address; pass --host "
                          "explicitly to expose your sessions to the network")
    _check_free(host, port)
    app = create_app(repo, allowed_hosts=None if local else set())
    server = make_server(host, port, app, threaded=True)
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{server.server_port}/"
    if ready is not None:
        ready(url)
    if open_browser:
        threading.Timer(0.3, webbrowser.open, (url,)).start()
    try:
        server.serve_forever()
    finally:
        server.server_close()
