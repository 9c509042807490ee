"""A local stand-in for the Hugging Face hub: serves one folder as a model repo over HTTP on 127.0.0.1.

It answers the calls huggingface_hub makes for `snapshot_download` / `list_repo_tree` / `hf_hub_download`
(repo info, recursive tree listing, HEAD and ranged GET on /resolve/), so the real download code runs against
it through `endpoint=` or HF_ENDPOINT. Every request is recorded, so tests can see what was downloaded.
"""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse

COMMIT = "0123456789abcdef0123456789abcdef01234567"


class FakeHub:
    def __init__(self, root: Path, repo_id: str) -> None:
        self.root = root
        self.repo_id = repo_id
        self.requests: list[tuple[str, str]] = []
        self.range_starts: list[tuple[str, int]] = []  # (file, first byte) of every ranged GET
        self._faults: dict[str, list[int]] = {}
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> FakeHub:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def fail_next(self, name: str, *faults: int) -> None:
        """Breaks the next GETs of a file in turn: n >= 0 sends n bytes then drops the connection; -1 answers 503."""
        self._faults.setdefault(name, []).extend(faults)

    def downloads(self) -> list[str]:
        """Paths of the repo whose bytes were fetched (GET on /resolve/<any revision>/), in order."""
        prefix = f"/{self.repo_id}/resolve/"
        return [
            path[len(prefix) :].split("/", 1)[1]
            for method, path in self.requests
            if method == "GET" and path.startswith(prefix)
        ]

    def _files(self) -> list[str]:
        return sorted(p.relative_to(self.root).as_posix() for p in self.root.rglob("*") if p.is_file())

    def _entry(self, name: str) -> dict[str, object]:
        data = (self.root / name).read_bytes()
        entry: dict[str, object] = {
            "type": "file",
            "path": name,
            "size": len(data),
            "oid": hashlib.sha1(data).hexdigest(),
        }
        if name.endswith(".onnx"):  # large files live in LFS on the real hub: etag = sha256
            entry["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
        return entry

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def _json(self, payload: object) -> None:
                body = json.dumps(payload).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _not_found(self, code: str) -> None:
                self.send_response(404)
                self.send_header("X-Error-Code", code)
                self.send_header("X-Error-Message", code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def _route(self, method: str) -> None:
                path = unquote(urlparse(self.path).path)
                hub.requests.append((method, path))
                api_prefix = f"/api/models/{hub.repo_id}"
                resolve_prefix = f"/{hub.repo_id}/resolve/"
                if path.startswith(f"{api_prefix}/revision/") or path == api_prefix:
                    siblings = [{"rfilename": name} for name in hub._files()]
                    self._json({"id": hub.repo_id, "modelId": hub.repo_id, "sha": COMMIT, "siblings": siblings})
                elif path.startswith(f"{api_prefix}/tree/"):
                    self._json([hub._entry(name) for name in hub._files()])
                elif path.startswith(resolve_prefix):
                    name = path[len(resolve_prefix) :].split("/", 1)[1]
                    self._serve_file(method, name)
                else:
                    self._not_found("RepoNotFound")

            def _serve_file(self, method: str, name: str) -> None:
                file_path = hub.root / name
                if not file_path.is_file():
                    self._not_found("EntryNotFound")
                    return
                data = file_path.read_bytes()
                entry = hub._entry(name)
                lfs = entry.get("lfs")
                etag = lfs["oid"] if isinstance(lfs, dict) else entry["oid"]
                start = 0
                range_header = self.headers.get("Range")
                if method == "GET" and range_header and range_header.startswith("bytes="):
                    start = int(range_header[len("bytes=") :].split("-", 1)[0] or 0)
                body = data[start:]
                fault = hub._faults[name].pop(0) if method == "GET" and hub._faults.get(name) else None
                if start:
                    hub.range_starts.append((name, start))
                if fault == -1:
                    self.send_response(503)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206 if start else 200)
                self.send_header("X-Repo-Commit", COMMIT)
                self.send_header("ETag", f'"{etag}"')
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("Content-Length", str(len(body)))
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.end_headers()
                if method == "GET":
                    self.wfile.write(body if fault is None else body[:fault])
                if fault is not None:
                    self.close_connection = True

            def do_GET(self) -> None:
                self._route("GET")

            def do_HEAD(self) -> None:
                self._route("HEAD")

        return Handler
