"""The async clients' transport (adapters/aio_transport.py: httpx and httpcore on asyncio's streams) against real
sockets on 127.0.0.1, including what the sandbox never exercises: TLS, as the Cloudflare API and HTTPS smoke
targets are reached. Certificates are made here for the test (a CA and a server certificate signed by it)."""

from __future__ import annotations

import ast
import asyncio
import datetime
import http.server
import ipaddress
import os
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from incidentops.adapters import aio_transport


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _certificates(folder: Path, names: list[str]) -> tuple[Path, Path, Path]:
    """A CA, and a server certificate for `names` (DNS names or IP addresses) signed by it: (ca, cert, key)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("incidentops test CA"))
        .issuer_name(_name("incidentops test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )  # key_cert_sign, crl_sign
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = []
    for name in names:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            sans.append(x509.DNSName(name))
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(names[0]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = (folder / "ca.pem", folder / "cert.pem", folder / "key.pem")
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return paths


class _Hello(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real APIs answer

    def do_GET(self) -> None:
        body = f"hello {self.path} from {self.client_address[1]}".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return None


def _serve(server: http.server.ThreadingHTTPServer) -> Iterator[str]:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def ca_and_server(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """An HTTPS server on 127.0.0.1 whose certificate names `localhost` and 127.0.0.1, and the CA that signed it."""
    ca, cert, key = _certificates(tmp_path, ["localhost", "127.0.0.1"])
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    for address in _serve(server):
        yield ca, address


@pytest.fixture
def plain_server() -> Iterator[str]:
    yield from _serve(http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hello))


def _get(context: ssl.SSLContext, *urls: str, timeout: float = 5.0) -> list[httpx.Response]:
    async def go() -> list[httpx.Response]:
        async with httpx.AsyncClient(transport=aio_transport.transport(context), timeout=timeout) as client:
            return [await client.get(url) for url in urls]

    return asyncio.run(go())


def test_https_with_a_trusted_certificate_by_ip_and_by_name(ca_and_server: tuple[Path, str]) -> None:
    ca, address = ca_and_server
    context = ssl.create_default_context(cafile=str(ca))
    port = address.rsplit(":", 1)[1]
    by_ip, by_name = _get(context, f"https://{address}/a", f"https://localhost:{port}/b")
    assert (by_ip.status_code, by_ip.text.split(" from ")[0]) == (200, "hello /a")
    assert (by_name.status_code, by_name.text.split(" from ")[0]) == (200, "hello /b")
    assert by_ip.extensions["http_version"] == b"HTTP/1.1"


def test_an_untrusted_certificate_is_refused(ca_and_server: tuple[Path, str]) -> None:
    _, address = ca_and_server
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        _get(ssl.create_default_context(), f"https://{address}/")  # the system's CAs never signed it


def test_a_certificate_for_another_host_is_refused(tmp_path: Path) -> None:
    ca, cert, key = _certificates(tmp_path, ["api.example.com"])
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    for address in _serve(server):
        with pytest.raises(httpx.ConnectError, match=r"match"):
            _get(ssl.create_default_context(cafile=str(ca)), f"https://{address}/")


def test_keep_alive_reuses_one_connection(plain_server: str) -> None:
    first, second = _get(ssl.create_default_context(), f"http://{plain_server}/1", f"http://{plain_server}/2")
    assert first.text.split(" from ")[1] == second.text.split(" from ")[1]  # the same client port: one connection


def test_nothing_listening_is_a_connect_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, never listening: the connection is refused
        with pytest.raises(httpx.ConnectError):
            _get(ssl.create_default_context(), f"http://127.0.0.1:{port}/")


def test_a_silent_server_is_a_read_timeout() -> None:
    with socket.socket() as quiet:
        quiet.bind(("127.0.0.1", 0))
        quiet.listen()  # accepts (the kernel does), never answers
        with pytest.raises(httpx.ReadTimeout):
            _get(ssl.create_default_context(), f"http://127.0.0.1:{quiet.getsockname()[1]}/", timeout=0.5)


def test_the_requests_go_through_the_asyncio_backend(plain_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # The transport swaps httpx's pool for one on this backend (a private attribute of httpx): if an httpx upgrade
    # stopped using it, requests would silently go through anyio again. This fails instead.
    opened: list[tuple[str, int]] = []
    connect = aio_transport._Backend.connect_tcp

    async def counting(self: aio_transport._Backend, host: str, port: int, *args: object, **kwargs: object) -> object:
        opened.append((host, port))
        return await connect(self, host, port, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(aio_transport._Backend, "connect_tcp", counting)
    _get(ssl.create_default_context(), f"http://{plain_server}/")
    assert opened == [("127.0.0.1", int(plain_server.rsplit(":", 1)[1]))]


def test_the_first_request_loads_no_module_that_importing_the_transport_did_not(plain_server: str) -> None:
    # A fresh interpreter, as each workflow run is: whatever httpcore needs on asyncio (anyio's backend, ~50 ms)
    # must load with the transport, so that a run preparing its client early pays it before its first wave.
    script = f"""
import asyncio, ssl, sys
import httpx
from incidentops.adapters import aio_transport
transport = aio_transport.transport(ssl.create_default_context())
loaded = set(sys.modules)
async def go():
    async with httpx.AsyncClient(transport=transport) as client:
        return (await client.get("http://{plain_server}/")).status_code
assert asyncio.run(go()) == 200
print(sorted(m for m in set(sys.modules) - loaded if not m.startswith("encodings")))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    new = ast.literal_eval(done.stdout.strip())
    assert not [m for m in new if m.split(".")[0] in ("anyio", "sniffio", "httpcore", "h11", "httpx")], new


def test_one_tls_context_per_process_for_cloudflare_and_the_probes(ca_and_server: tuple[Path, str]) -> None:
    # A fresh interpreter, as each run is. Loading a CA bundle costs about 50 ms of CPU here, and a rollback builds a
    # Cloudflare client and then runs the smoke probes: they load it once between them. The one context honours
    # SSL_CERT_FILE as httpx does (a self-hosted runner behind a TLS-inspecting proxy sets it): the probe to a
    # server only that CA signed passes, and without the variable the same probe is refused.
    ca, address = ca_and_server
    script = f"""
import asyncio, httpx
from incidentops.adapters import smoke
from incidentops.adapters.cloudflare import CloudflareClient
built = []
create = httpx.create_ssl_context
httpx.create_ssl_context = lambda *a, **k: built.append(1) or create(*a, **k)
CloudflareClient(token="t", account_id="a")
[result] = asyncio.run(smoke.run_probes([smoke.Probe("hello", "GET", "https://{address}/")], smoke.Settings(retries=0)))
CloudflareClient(token="t", account_id="a")
print(len(built), result.passed, result.reason)
"""
    trusted = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=_env(SSL_CERT_FILE=str(ca))
    )
    assert trusted.returncode == 0, trusted.stderr
    assert trusted.stdout.split(" ", 2)[:2] == ["1", "True"], trusted.stdout
    untrusted = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=_env())
    assert untrusted.returncode == 0, untrusted.stderr
    assert untrusted.stdout.startswith("1 False") and "CERTIFICATE_VERIFY_FAILED" in untrusted.stdout, untrusted.stdout


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SSL_CERT_FILE", "SSL_CERT_DIR")}
    return {**env, **extra}
