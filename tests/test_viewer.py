"""The web viewer without a browser: pages, escaping, CSRF and Host checks, the bind rule, live
reads, the actions, and that ``import sessionsgit`` never loads the web stack."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

flask = pytest.importorskip("flask", reason="the viewer needs the serve extra (flask)")

from click.testing import CliRunner  # noqa: E402

from sessionsgit import GitSessionStore  # noqa: E402
from sessionsgit.cli import cli  # noqa: E402
from sessionsgit.web.app import create_app  # noqa: E402
from sessionsgit.web.content import image_urls, segments  # noqa: E402
from sessionsgit.web.server import ViewerError, is_local, serve  # noqa: E402

PNG = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5E"
       "rkJggg==")
TRIP = [
    {"role": "user", "content": "Plan Porto <script>alert('x')</script> please"},
    {"role": "assistant", "content": [
        {"type": "text", "text": "Here:\n```python\nprint('<b>hi</b>')\n```\nDone."},
        {"type": "tool_use", "id": "t1", "name": "maps", "input": {"q": "porto"}}]},
    {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "t1", "content": "42 km"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}]},
]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    store = GitSessionStore(tmp_path / "repo")
    store.save("trip", TRIP, {"label": "Porto <trip>"})
    store.fork("trip", "trip-b", at=2)
    return tmp_path / "repo"


@pytest.fixture
def client(repo: Path):  # type: ignore[no-untyped-def]
    return create_app(repo).test_client()


def page(client, url: str) -> str:  # type: ignore[no-untyped-def]
    response = client.get(url)
    assert response.status_code == 200, response.data[:300]
    return response.data.decode()


def token(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found
    return found.group(1)


def test_every_page_renders(client) -> None:  # type: ignore[no-untyped-def]
    listing = page(client, "/")
    assert listing.index("trip-b") < listing.index(">trip<")  # newest first
    assert "Porto &lt;trip&gt;" in listing
    assert 'id="fork-tree"' in page(client, "/tree") and "<path class=\"edge\"" in page(
        client, "/tree")
    assert "Compare the two saves" in page(client, "/history?id=trip")
    diff = page(client, "/diff?a=trip&b=trip-b")
    assert "0 added, 1 removed, 0 changed, 2 unchanged" in diff
    assert "Nothing deleted." in page(client, "/trash")
    assert client.get("/session?id=nope").status_code == 404
    assert client.get("/session").status_code == 400


def test_messages_are_escaped_code_and_images_rendered(client) -> None:  # type: ignore
    html = page(client, "/session?id=trip")
    assert "<script>alert" not in html and "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html
    assert "<pre><code data-lang=\"python\">print(&#39;&lt;b&gt;hi&lt;/b&gt;&#39;)\n</code></pre>" in html
    assert f'src="data:image/png;base64,{PNG}"' in html
    assert "tool call" in html and "maps" in html and "42 km" in html


def test_only_raster_base64_images_are_inlined() -> None:
    svg = "data:image/svg+xml;base64,PHN2Zz48L3N2Zz4="
    message = {"role": "user", "content": [{"type": "image_url", "image_url": {"url": svg}},
                                            {"type": "image_url",
                                             "image_url": {"url": f"data:image/png;base64,{PNG}"}}]}
    assert image_urls(message) == [f"data:image/png;base64,{PNG}"]
    assert segments("a\n```sh\nls\n```\nb") == [(False, "", "a\n"), (True, "sh", "ls\n"),
                                               (False, "", "\nb")]


def test_search_box(client) -> None:  # type: ignore[no-untyped-def]
    html = page(client, "/?q=%22plan+porto%22")
    assert "<mark>Plan Porto</mark>" in html and 'id="hits"' in html
    assert "No matches." in page(client, "/?q=zeppelin")
    csrf = token(page(client, "/session?id=trip"))
    client.post("/delete", data={"id": "trip", "csrf": csrf})
    assert "No matches." in page(client, "/?q=km")
    old = page(client, "/?q=km&all=1")
    assert "deleted</span>" in old and 'href="/trash"' in old


def test_actions_need_the_csrf_token(client, repo: Path) -> None:  # type: ignore
    assert client.post("/fork", data={"id": "trip", "at": "1"}).status_code == 403
    assert client.post("/delete", data={"id": "trip", "csrf": "guess"}).status_code == 403
    good = token(page(client, "/session?id=trip"))
    evil = client.post("/delete", data={"id": "trip", "csrf": good},
                       headers={"Origin": "http://evil.example"})
    assert evil.status_code == 403
    assert GitSessionStore(repo, create=False).exists("trip")


def test_fork_rename_delete_restore(client, repo: Path) -> None:  # type: ignore
    csrf = token(page(client, "/session?id=trip"))
    forked = client.post("/fork", data={"id": "trip", "at": "1", "csrf": csrf})
    assert forked.status_code == 302
    child = forked.location.split("id=")[1]
    store = GitSessionStore(repo, create=False)
    assert store.load(child).messages == TRIP[:1]
    client.post("/rename", data={"id": child, "label": "short", "csrf": csrf})
    assert store.load(child).metadata.label == "short"
    assert "Yes, delete" in page(client, f"/confirm?action=delete&id={child}")
    client.post("/delete", data={"id": child, "csrf": csrf})
    assert not store.exists(child)
    assert "short" in page(client, "/trash")
    client.post("/restore", data={"id": child, "csrf": csrf})
    assert store.exists(child)
    bad = client.post("/fork", data={"id": "trip", "at": "99", "csrf": csrf})
    assert bad.status_code == 400 and b"outside the transcript" in bad.data


def test_reads_the_repository_live(client, repo: Path) -> None:  # type: ignore
    assert "elsewhere" not in page(client, "/")
    GitSessionStore(repo, create=False).save("elsewhere", [{"role": "user", "content": "hi"}])
    assert "elsewhere" in page(client, "/")
    assert "elsewhere" in page(client, "/?q=hi")


def test_foreign_host_headers_are_refused(client) -> None:  # type: ignore[no-untyped-def]
    assert client.get("/", headers={"Host": "attacker.example"}).status_code == 400
    assert client.get("/", headers={"Host": "localhost:8765"}).status_code == 200
    assert client.get("/", headers={"Host": "[::1]:8765"}).status_code == 200


def test_a_non_local_bind_needs_an_explicit_host(repo: Path) -> None:
    assert is_local("127.0.0.1") and is_local("::1") and is_local("localhost")
    assert not is_local("0.0.0.0") and not is_local("192.168.1.4")
    with pytest.raises(ViewerError, match="not a local address"):
        serve(repo, host="0.0.0.0", port=0)


def test_serve_without_a_repository_is_a_one_line_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["--repo", str(tmp_path / "none"), "serve"])
    assert result.exit_code == 1 and result.output.startswith("Error: no sessions repository")


def test_import_sessionsgit_never_imports_the_web_stack() -> None:
    code = ("import sys, sessionsgit, sessionsgit.cli, sessionsgit.search;"
            "bad = [m for m in ('flask', 'werkzeug', 'jinja2', 'sessionsgit.web') "
            "if m in sys.modules]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_a_busy_port_is_a_one_line_error(repo: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(cli, ["--repo", str(repo), "serve", "--port", str(port)])
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: cannot listen on 127.0.0.1:{port}: ")
    assert len(result.output.splitlines()) == 1
