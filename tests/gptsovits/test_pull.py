import hashlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from synth.engines.gptsovits import pull as pull_module
from synth.engines.gptsovits.loader import SOVITS_FILE
from synth.engines.gptsovits.pull import CORE_FILES, PullError, pull, verify


def test_an_unreachable_hub_fails_with_a_clear_message(tmp_path: Path) -> None:
    with pytest.raises(PullError, match="cannot download http://127.0.0.1:9/.*no internet access"):
        pull(tmp_path / "models", base_url="http://127.0.0.1:9/", timeout_s=2)
    assert not any(p.is_file() for p in (tmp_path / "models").rglob("*"))  # no partial files left


@pytest.fixture
def hub(tiny_dir: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """A local stand-in for the hub serving the tiny files with their published SHA-256."""
    published: dict[str, str] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - name fixed by BaseHTTPRequestHandler
            from urllib.parse import unquote

            name = unquote(self.path.lstrip("/"))
            path = tiny_dir / name
            if not path.is_file():
                self.send_error(404)
                return
            data = path.read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("X-Linked-Etag", f'"{published.get(name, hashlib.sha256(data).hexdigest())}"')
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", published
    server.shutdown()
    thread.join()


def test_pull_checks_hashes_and_the_official_fingerprint(
    hub: tuple[str, dict[str, str]], tiny_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, published = hub
    with pytest.raises(PullError, match="not the official pretrained file"):
        pull(tmp_path / "a", base_url=url)  # the tiny SoVITS file is not the official one
    assert not (tmp_path / "a" / SOVITS_FILE).exists()

    head = hashlib.md5((tiny_dir / SOVITS_FILE).read_bytes()[:8192]).hexdigest()
    monkeypatch.setitem(pull_module.HEAD_MD5, SOVITS_FILE, head)
    files = pull(tmp_path / "b", base_url=url)
    assert [p.relative_to(tmp_path / "b").as_posix() for p in files] == list(CORE_FILES)
    verify(tmp_path / "b")
    (tmp_path / "b" / CORE_FILES[2]).write_text('{"tampered": true}')
    with pytest.raises(PullError, match="changed since it was verified"):
        verify(tmp_path / "b")

    published[CORE_FILES[2]] = "0" * 64
    with pytest.raises(PullError, match="does not match the published"):
        pull(tmp_path / "c", base_url=url)
