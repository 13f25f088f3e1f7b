"""Clones over HTTP: the sandbox serves its bare repositories at `<server>/<owner>/<repo>(.git)`, as github.com does.

act fetches a remote reusable workflow (`uses: owner/repo/.github/workflows/x.yml@sha`) from
`<GITHUB_SERVER_URL>/<owner>/<repo>` over git's smart HTTP protocol (nektos/act pkg/runner/reusable_workflow.go and
action_cache.go: go-git, depth 1, the ref fetched by name or SHA), and actions/checkout fetches another repository
from `<server>/<owner>/<repo>` (src/url-helper.ts). Both need a git server; this one is git's own CGI,
`git http-backend` (git-http-backend(1)), over every `OWNER/REPO.git` under the sandbox's root.

As strict as github.com where the product depends on it: only the upload-pack service (clones and fetches; a push
answers 403, pushes reach the bare repository directly in the harness), a repository that does not exist answers
404, and a fetch may ask for any commit reachable from a ref (uploadpack.allowReachableSHA1InWant), which is what
github.com allows and what a checkout by SHA relies on. The emulated repositories are public: no token is needed,
one that is sent is ignored.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from urllib.parse import urlencode

from incidentops.sandbox.http import App, Request, Response

SERVICE = "git-upload-pack"


def install(app: App, root: Path) -> None:
    """Serve the bare repositories `root/OWNER/REPO.git` read-only over smart HTTP."""

    @app.route("GET", "/{owner}/{repo}/info/refs")
    def refs(request: Request) -> Response:
        if request.arg("service") != SERVICE:
            return Response(403, "only clones and fetches are served (service=git-upload-pack)\n")
        return _backend(root, request, "info/refs")

    @app.route("POST", "/{owner}/{repo}/git-upload-pack")
    def upload_pack(request: Request) -> Response:
        return _backend(root, request, SERVICE)

    @app.route("POST", "/{owner}/{repo}/git-receive-pack")
    def receive_pack(request: Request) -> Response:
        return Response(403, "pushes are not served over HTTP by the sandbox\n")


def _backend(root: Path, request: Request, service_path: str) -> Response:
    owner, repo = request.params["owner"], request.params["repo"].removesuffix(".git")
    bare = root / owner / f"{repo}.git"
    if "/" in owner or owner.startswith(".") or repo.startswith(".") or not (bare / "HEAD").is_file():
        return Response(404, "Repository not found.\n")
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "GIT_PROJECT_ROOT": str(root),
        "GIT_HTTP_EXPORT_ALL": "1",
        "PATH_INFO": f"/{owner}/{repo}.git/{service_path}",
        "REQUEST_METHOD": request.method,
        "QUERY_STRING": urlencode({k: v[0] for k, v in request.query.items()}),
        "CONTENT_TYPE": request.headers.get("content-type", ""),
        "CONTENT_LENGTH": str(len(request.body)),
        "REMOTE_ADDR": "127.0.0.1",
        # git's wire protocol version travels in a header (gitprotocol-http(5), "Git-Protocol").
        "GIT_PROTOCOL": request.headers.get("git-protocol", ""),
        "HTTP_CONTENT_ENCODING": request.headers.get("content-encoding", ""),
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "uploadpack.allowReachableSHA1InWant",
        "GIT_CONFIG_VALUE_0": "true",
    }
    done = subprocess.run(["git", "http-backend"], input=request.body, env=env, capture_output=True, timeout=120)
    head, separator, body = done.stdout.partition(b"\r\n\r\n")
    if not separator or done.returncode != 0:
        return Response(500, f"git http-backend failed: {done.stderr.decode('utf-8', 'replace')[-500:]}\n")
    status = 200
    headers: dict[str, str] = {}
    for line in head.decode("latin-1").split("\r\n"):
        name, _, value = line.partition(":")
        if name.lower() == "status":
            status = int(value.strip().split()[0])
        elif name:
            headers[name.strip()] = value.strip()
    return Response(status, body, headers)
