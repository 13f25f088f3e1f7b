"""The executable runbook: smoke checks read from fenced ```smoke blocks, and the verdict on one answer.

People read the deploy runbook; the machine reads the same file's ```smoke blocks (YAML). Parsing is
strict: an unknown key, a bad status or an unknown service is an error naming the file, the line and
the problem, because a typo must never silently drop an expectation. Secrets are named by environment
variable (`${SMOKE_TENANT_A_TOKEN}`), never written in the file. Pure: no I/O, no clock.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ruamel.yaml import YAML
from ruamel.yaml.constructor import SafeConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, SequenceNode
from ruamel.yaml.parser import Parser
from ruamel.yaml.resolver import _DEFAULT_YAML_VERSION, VersionedResolver

from incidentops.errors import IncidentOpsError

RUNBOOK_PATH = "docs/runbooks/environment-deploy-runbook.md"
FENCE_INFO = "smoke"
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
ISOLATION_STATUSES = (403, 404)
_SECRET_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_SECRET_VAR = re.compile(r"^SMOKE_[A-Z0-9_]+$")
_PLACEHOLDER = re.compile(r"\{([a-z][a-z0-9_-]*)\}")
_SENSITIVE_HEADER = re.compile(r"(authorization|cookie|token|secret|api-key|apikey|password)", re.IGNORECASE)
_HEADER_NAME = re.compile(r"^[A-Za-z0-9-]{1,100}$")
_CHECK_KEYS = ("name", "service", "method", "url", "headers", "json_body", "expect", "tenant_isolation")
_EXPECT_KEYS = ("status", "json", "body_contains", "body_not_contains", "max_latency_ms")
_BLOCK_KEYS = ("environment", "checks")


class RunbookError(IncidentOpsError):
    """The runbook's smoke blocks cannot be read; the message names file, line and problem."""


@dataclass(frozen=True)
class Expect:
    status: tuple[int, ...] = (200,)
    json: tuple[tuple[str, Any], ...] = ()  # (dotted path, expected value); `*` means every list item
    contains: tuple[str, ...] = ()
    not_contains: tuple[str, ...] = ()
    max_latency_ms: int | None = None


@dataclass(frozen=True)
class Check:
    name: str
    service: str
    environment: str
    url: str  # template: `{api}/v1/reports` (a base URL name of the environment) or an absolute URL
    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = ()  # values may hold `${SMOKE_…}` references
    json_body: str | None = None  # JSON text sent with Content-Type: application/json
    expect: Expect = field(default_factory=Expect)
    isolation: bool = False  # a tenant-isolation check: the other tenant's data must be refused
    source: str = RUNBOOK_PATH
    line: int = 0  # 1-based line of the check in the runbook

    @property
    def where(self) -> str:
        return f"{self.source}:{self.line}"

    def secret_names(self) -> list[str]:
        """The environment variables this check's headers need, in order of appearance."""
        names = [m.group(1) for _, value in self.headers for m in _SECRET_REF.finditer(value)]
        return list(dict.fromkeys(names))


@dataclass(frozen=True)
class Runbook:
    source: str
    checks: tuple[Check, ...]

    @property
    def environments(self) -> list[str]:
        return list(dict.fromkeys(c.environment for c in self.checks))

    def for_environment(self, environment: str) -> list[Check]:
        return [c for c in self.checks if c.environment == environment]


# -- parsing -------------------------------------------------------------------------------------------


@dataclass
class _Block:
    start: int  # 1-based line of the first YAML line
    text: str


def _blocks(text: str, source: str) -> tuple[list[_Block], list[str]]:
    blocks: list[_Block] = []
    errors: list[str] = []
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        stripped = lines[i].strip()
        if stripped.startswith("```") and stripped[3:].strip().split(" ")[0] == FENCE_INFO:
            opened = i + 1
            end = next((j for j in range(i + 1, len(lines)) if lines[j].strip().startswith("```")), None)
            if end is None:
                errors.append(f"{source}:{opened}: the ```smoke block is never closed (add a line with ```)")
                break
            blocks.append(_Block(opened + 1, "\n".join(lines[i + 1 : end])))
            i = end
        i += 1
    return blocks, errors


class _Lines:
    """Where a mapping's keys or a sequence's items start (0-based lines), read like ruamel's round-trip `lc`."""

    def __init__(self, line: int, keys: dict[Any, int] | None = None, items: list[int] | None = None) -> None:
        self.line = line
        self._keys = keys or {}
        self._items = items or []

    def key(self, key: Any) -> tuple[int, int]:
        return self._keys[key], 0

    def item(self, index: int) -> tuple[int, int]:
        return self._items[index], 0


class _Map(dict[Any, Any]):
    lc: _Lines


class _Seq(list[Any]):
    lc: _Lines


class _LinedConstructor(SafeConstructor):
    """YAML's safe types, each mapping and sequence knowing its lines: the round-trip loader's line numbers at
    a fraction of its cost (it keeps every comment and style, which a smoke block does not need)."""

    def construct_lined_map(self, node: MappingNode) -> Iterator[_Map]:
        data = _Map()
        yield data
        data.update(self.construct_mapping(node))
        keys: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node)
            if isinstance(key, str | int | float | bool) or key is None:
                keys.setdefault(key, key_node.start_mark.line)
        data.lc = _Lines(node.start_mark.line, keys=keys)

    def construct_lined_seq(self, node: SequenceNode) -> Iterator[_Seq]:
        data = _Seq()
        yield data
        data.extend(self.construct_sequence(node))
        data.lc = _Lines(node.start_mark.line, items=[item.start_mark.line for item in node.value])


_LinedConstructor.add_constructor("tag:yaml.org,2002:map", _LinedConstructor.construct_lined_map)
_LinedConstructor.add_constructor("tag:yaml.org,2002:seq", _LinedConstructor.construct_lined_seq)


class _Resolver(VersionedResolver):
    """ruamel's resolver, told its YAML version once: behind the C parser it looks for a scanner's `%YAML`
    directive on every scalar and finds none (two caught AttributeErrors each, up to a third of the C path's time)."""

    @property
    def processing_version(self) -> Any:
        return self._loader_version or _DEFAULT_YAML_VERSION


def _loader(pure: bool) -> YAML:
    yaml = YAML(typ="safe", pure=pure)
    yaml.Constructor = _LinedConstructor
    if not pure:
        yaml.Resolver = _Resolver
    return yaml


def c_parser_available() -> bool:
    """Whether ruamel's C parser (libyaml, the `ruamel.yaml.clib` wheel) is installed: blocks then parse in C."""
    return YAML(typ="safe").Parser is not Parser


def _load(text: str) -> Any:
    """One block's YAML: by ruamel's C parser when installed, else (and for every error) by its pure one.

    The C parser (libyaml) reads a smoke block four to six times faster and marks the same lines. It does not
    apply a `%YAML` directive's version, so a block with a directive goes to the pure parser, as does every block
    the C parser refuses: what a bad block says (problem and line) is always the pure parser's message, and
    anything only the pure parser accepts is read as before.
    """
    if not any(line.startswith("%") for line in text.split("\n")) and c_parser_available():
        try:
            return _loader(pure=False).load(text)
        except YAMLError:
            pass
    return _loader(pure=True).load(text)


def _line(node: Any, key: Any, base: int) -> int:
    """1-based file line of `key` inside a ruamel mapping or sequence `node`."""
    try:
        if isinstance(key, int):
            return int(node.lc.item(key)[0]) + base
        return int(node.lc.key(key)[0]) + base
    except (AttributeError, KeyError, TypeError, IndexError):
        return int(getattr(getattr(node, "lc", None), "line", 0) or 0) + base


class _Reader:
    def __init__(self, source: str, services: Collection[str]) -> None:
        self.source = source
        self.services = services
        self.errors: list[str] = []

    def error(self, line: int, problem: str) -> None:
        self.errors.append(f"{self.source}:{line}: {problem}")

    def block(self, block: _Block) -> list[Check]:
        try:
            doc = _load(block.text)
        except MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = block.start + (mark.line if mark else 0)
            self.error(line, f"not valid YAML: {exc.problem or exc.context}")
            return []
        except YAMLError as exc:
            self.error(block.start, f"not valid YAML: {exc}")
            return []
        base = block.start
        if not isinstance(doc, Mapping):
            self.error(base, "a smoke block must be a mapping with `environment` and `checks`")
            return []
        for key in doc:
            if key not in _BLOCK_KEYS:
                self.error(_line(doc, key, base), f"unknown key {key!r} (expected {', '.join(_BLOCK_KEYS)})")
        environment = doc.get("environment")
        if not isinstance(environment, str) or not environment:
            self.error(_line(doc, "environment", base), "`environment` must name an environment, e.g. production")
            return []
        raw_checks = doc.get("checks")
        if not isinstance(raw_checks, list) or not raw_checks:
            self.error(_line(doc, "checks", base), "`checks` must be a non-empty list")
            return []
        checks = []
        for i, raw in enumerate(raw_checks):
            check = self.check(raw, environment, _line(raw_checks, i, base), base)
            if check is not None:
                checks.append(check)
        return checks

    def check(self, raw: Any, environment: str, line: int, base: int) -> Check | None:
        if not isinstance(raw, Mapping):
            self.error(line, "each check must be a mapping (name, service, url, expect, …)")
            return None
        before = len(self.errors)
        for key in raw:
            if key not in _CHECK_KEYS:
                self.error(_line(raw, key, base), f"unknown key {key!r} in a check (expected {', '.join(_CHECK_KEYS)})")
        name = raw.get("name")
        if not isinstance(name, str) or not name.strip():
            self.error(line, "a check needs a `name`")
            name = "?"
        service = raw.get("service")
        if not isinstance(service, str) or service not in self.services:
            self.error(
                _line(raw, "service", base) if "service" in raw else line,
                f"check {name!r}: unknown service {service!r} (known: {', '.join(self.services)})",
            )
        method = str(raw.get("method", "GET")).upper()
        if method not in METHODS:
            self.error(
                _line(raw, "method", base), f"check {name!r}: method {method!r} is not one of {', '.join(METHODS)}"
            )
        url = raw.get("url")
        if not isinstance(url, str) or not (_PLACEHOLDER.match(url) or re.match(r"^https?://", url)):
            self.error(
                _line(raw, "url", base) if "url" in raw else line,
                f"check {name!r}: `url` must start with a base URL name like {{api}} or with http(s)://",
            )
        headers = self.headers(raw, name, base)
        json_body = None
        if "json_body" in raw:
            try:
                json_body = json.dumps(_plain(raw["json_body"]), sort_keys=True)
            except (TypeError, ValueError):
                self.error(_line(raw, "json_body", base), f"check {name!r}: `json_body` is not JSON data")
        expect, isolation = self.expect(raw, name, base)
        if len(self.errors) > before:
            return None
        return Check(
            name=name.strip(),
            service=str(service),
            environment=environment,
            url=str(url),
            method=method,
            headers=headers,
            json_body=json_body,
            expect=expect,
            isolation=isolation,
            source=self.source,
            line=line,
        )

    def headers(self, raw: Mapping[str, Any], name: str, base: int) -> tuple[tuple[str, str], ...]:
        value = raw.get("headers", {})
        if not isinstance(value, Mapping):
            self.error(_line(raw, "headers", base), f"check {name!r}: `headers` must be a mapping of name to value")
            return ()
        out = []
        for header, text in value.items():
            at = _line(value, header, base)
            if not isinstance(header, str) or not _HEADER_NAME.match(header):
                self.error(at, f"check {name!r}: {header!r} is not a header name")
                continue
            if not isinstance(text, str | int):
                self.error(at, f"check {name!r}: header {header} must be a string")
                continue
            text = str(text)
            refs = _SECRET_REF.findall(text)
            bad = [r for r in refs if not _SECRET_VAR.match(r)]
            if bad:
                self.error(
                    at, f"check {name!r}: header {header} uses ${{{bad[0]}}}; secrets must come from SMOKE_* variables"
                )
            elif _SENSITIVE_HEADER.search(header) and not refs:
                self.error(
                    at,
                    f"check {name!r}: header {header} holds a credential written in the file; "
                    "name an environment variable instead, e.g. Bearer ${SMOKE_TENANT_A_TOKEN}",
                )
            out.append((header, text))
        return tuple(out)

    def expect(self, raw: Mapping[str, Any], name: str, base: int) -> tuple[Expect, bool]:
        spec = raw.get("expect", {})
        if not isinstance(spec, Mapping):
            self.error(_line(raw, "expect", base), f"check {name!r}: `expect` must be a mapping")
            spec = {}
        for key in spec:
            if key not in _EXPECT_KEYS:
                self.error(
                    _line(spec, key, base),
                    f"check {name!r}: unknown expectation {key!r} (expected {', '.join(_EXPECT_KEYS)})",
                )
        isolation = raw.get("tenant_isolation")
        foreign: list[str] = []
        if isolation is not None:
            at = _line(raw, "tenant_isolation", base)
            ids = isolation.get("foreign_ids") if isinstance(isolation, Mapping) else None
            if not isinstance(ids, list) or not ids or not all(isinstance(i, str | int) and str(i) for i in ids):
                self.error(at, f"check {name!r}: `tenant_isolation` needs `foreign_ids`: the other tenant's ids")
            else:
                foreign = [str(i) for i in ids]
            if isinstance(isolation, Mapping) and set(isolation) - {"foreign_ids"}:
                self.error(at, f"check {name!r}: `tenant_isolation` takes only `foreign_ids`")
        default_status: tuple[int, ...] = ISOLATION_STATUSES if isolation is not None else (200,)
        status = self.statuses(spec, name, base, default_status)
        if isolation is not None and not set(status) <= set(ISOLATION_STATUSES):
            self.error(
                _line(spec, "status", base),
                f"check {name!r}: a tenant-isolation check must expect the request refused (403 and/or 404)",
            )
        pairs: list[tuple[str, Any]] = []
        fields = spec.get("json", {})
        if not isinstance(fields, Mapping):
            self.error(_line(spec, "json", base), f"check {name!r}: `expect.json` must map a field path to a value")
        else:
            pairs = [(str(k), _plain(v)) for k, v in fields.items()]
        contains = self.strings(spec, "body_contains", name, base)
        not_contains = self.strings(spec, "body_not_contains", name, base) + foreign
        latency = spec.get("max_latency_ms")
        if latency is not None and (not isinstance(latency, int) or isinstance(latency, bool) or latency <= 0):
            self.error(
                _line(spec, "max_latency_ms", base), f"check {name!r}: `max_latency_ms` must be a positive integer"
            )
            latency = None
        expect = Expect(
            status=status,
            json=tuple(pairs),
            contains=tuple(contains),
            not_contains=tuple(dict.fromkeys(not_contains)),
            max_latency_ms=latency,
        )
        return expect, isolation is not None

    def statuses(self, spec: Mapping[str, Any], name: str, base: int, default: tuple[int, ...]) -> tuple[int, ...]:
        value = spec.get("status", list(default))
        items = value if isinstance(value, list) else [value]
        if not items or not all(isinstance(s, int) and not isinstance(s, bool) and 100 <= s <= 599 for s in items):
            self.error(
                _line(spec, "status", base),
                f"check {name!r}: `status` must be an HTTP status or a list of them, got {value!r}",
            )
            return default
        return tuple(int(s) for s in items)

    def strings(self, spec: Mapping[str, Any], key: str, name: str, base: int) -> list[str]:
        value = spec.get(key, [])
        items = value if isinstance(value, list) else [value]
        if not all(isinstance(s, str) and s for s in items):
            self.error(_line(spec, key, base), f"check {name!r}: `{key}` must be a string or a list of strings")
            return []
        return [str(s) for s in items]


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def parse_runbook(text: str, services: Collection[str], source: str = RUNBOOK_PATH) -> Runbook:
    """Read every ```smoke block of the runbook, or raise `RunbookError` listing each problem with its line."""
    blocks, errors = _blocks(text, source)
    reader = _Reader(source, services)
    reader.errors.extend(errors)
    checks: list[Check] = []
    for block in blocks:
        checks.extend(reader.block(block))
    seen: dict[tuple[str, str], int] = {}
    for check in checks:
        key = (check.environment, check.name)
        if key in seen:
            reader.error(
                check.line, f"check {check.name!r} is defined twice for {check.environment} (first at line {seen[key]})"
            )
        seen.setdefault(key, check.line)
    if not blocks and not errors:
        reader.error(1, "no ```smoke blocks found; the smoke checks live in fenced ```smoke YAML blocks")
    if reader.errors:
        raise RunbookError(
            "the runbook's smoke checks cannot be read:\n  " + "\n  ".join(reader.errors),
            hint=f"Fix {source} and run again.",
        )
    return Runbook(source, tuple(checks))


# -- building a request --------------------------------------------------------------------------------


def resolve_url(check: Check, base_urls: Mapping[str, str]) -> str:
    """The check's URL with `{name}` replaced by the environment's base URL; RunbookError naming the line."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in base_urls:
            raise RunbookError(
                f"{check.where}: check {check.name!r} uses {{{name}}}, but {check.environment} has no base URL "
                f"{name!r} (known: {', '.join(base_urls) or 'none'})",
                hint="Add it under environments[].base_urls in incidentops.yaml.",
            )
        return base_urls[name].rstrip("/")

    url = _PLACEHOLDER.sub(replace, check.url)
    problem = unsafe_url(url, base_urls)
    if problem:
        raise RunbookError(
            f"{check.where}: check {check.name!r} would send its request to {url!r}: {problem}",
            hint="A check's URL must start with {name}/ (a base URL of the environment) followed by a path.",
        )
    return url


LOOPBACK = ("127.0.0.1", "::1")  # the sandbox: plain http is allowed only to this machine


def unsafe_url(url: str, base_urls: Mapping[str, str]) -> str:
    """Why a resolved check URL must not receive the tenants' credentials, or "" when it may.

    The runbook is text anyone with write access can change, and a check carries `${SMOKE_…}` tokens: `{api}@evil…`
    (userinfo) or `{api}.evil…` (a longer host) would hand them to another host. So: https only (http only to the
    sandbox on loopback), no userinfo, and exactly the host and port of one of the environment's base URLs.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as err:
        return f"not a URL ({err})"
    allowed = set()
    for base in base_urls.values():
        b = urlsplit(base)
        try:
            allowed.add((b.scheme, b.hostname, b.port))
        except ValueError:
            continue
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        return "it carries a user name or password before the host"
    if parts.scheme != "https" and not (parts.scheme == "http" and parts.hostname in LOOPBACK):
        return "only https URLs may receive credentials"
    if (parts.scheme, parts.hostname, port) not in allowed:
        return f"host {parts.hostname!r} is not one of the environment's base URLs"
    return ""


def resolve_headers(check: Check, env: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """Headers with `${SMOKE_…}` filled in from `env`, and the names of the variables that are not set."""
    missing = [name for name in check.secret_names() if not env.get(name)]
    headers = {name: _SECRET_REF.sub(lambda m: env.get(m.group(1), ""), value) for name, value in check.headers}
    return headers, missing


# -- the verdict -------------------------------------------------------------------------------------


def _lookup(data: Any, path: list[str]) -> list[Any]:
    """Values at a dotted path; `*` fans out over a list. A missing step yields nothing."""
    if not path:
        return [data]
    head, rest = path[0], path[1:]
    if head == "*":
        if not isinstance(data, list):
            return []
        return [v for item in data for v in _lookup(item, rest)]
    if isinstance(data, Mapping) and head in data:
        return _lookup(data[head], rest)
    if isinstance(data, list) and head.isdigit() and int(head) < len(data):
        return _lookup(data[int(head)], rest)
    return []


def _short(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "…"


def evaluate(expect: Expect, status: int, body: str, latency_ms: float) -> list[str]:
    """Problems with one answer (empty: the check passed). Never quotes a foreign id's surroundings."""
    problems = []
    if status not in expect.status:
        wanted = " or ".join(str(s) for s in expect.status)
        problems.append(f"status {status}, expected {wanted}")
    if expect.json:
        try:
            data = json.loads(body)
        except ValueError:
            problems.append("body is not JSON")
        else:
            for path, wanted_value in expect.json:
                found = _lookup(data, path.split("."))
                if not found:
                    problems.append(f"JSON field {path} is missing")
                elif any(v != wanted_value for v in found):
                    wrong = next(v for v in found if v != wanted_value)
                    problems.append(f"JSON field {path} is {_short(wrong)}, expected {_short(wanted_value)}")
    for text in expect.contains:
        if text not in body:
            problems.append(f"body does not contain {text!r}")
    for text in expect.not_contains:
        if text in body:
            problems.append(f"body contains {text!r}")
    if expect.max_latency_ms is not None and latency_ms > expect.max_latency_ms:
        problems.append(f"took {latency_ms:.0f} ms, limit {expect.max_latency_ms} ms")
    return problems
