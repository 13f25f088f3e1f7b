"""Check request and response bodies against an OpenAPI 3.0 description.

The emulators call `validate_request` on every JSON body they receive and `validate_response` on every body
they send; an empty list means the body matches the spec. Schemas are checked with plain `jsonschema`
(Draft 4, which OpenAPI 3.0 schemas are a dialect of) after `nullable: true` is rewritten into JSON Schema.
"""

from __future__ import annotations

import copy
import json
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from jsonschema import Draft4Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

_SPEC_URI = "urn:incidentops:openapi-spec"
_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_MAX_MESSAGE = 300
# Path parameters that may hold slashes when they end the template, as GitHub allows.
SLASH_PARAMS = frozenset({"path", "ref", "branch"})


def _rewrite_nullable(node: Any) -> Any:
    """Return a copy of `node` where OpenAPI 3.0 `nullable: true` became a JSON Schema null alternative."""
    if isinstance(node, list):
        return [_rewrite_nullable(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: (value if key in ("example", "examples") else _rewrite_nullable(value)) for key, value in node.items()}
    if out.get("nullable") is not True:
        return out
    del out["nullable"]
    if "enum" in out and None not in out["enum"]:
        out["enum"] = [*out["enum"], None]
    kind = out.get("type")
    if isinstance(kind, str):
        out["type"] = [kind, "null"]
        return out
    if kind is None:
        # No type to extend (e.g. a bare allOf/oneOf/$ref): accept null as an alternative.
        return {"anyOf": [{"type": "null"}, out]}
    return out


def _resolve_local(document: Any, node: Any) -> Any:
    """Follow local `$ref`s from `node` to the schema they name."""
    for _ in range(16):
        ref = node.get("$ref") if isinstance(node, dict) else None
        if not isinstance(ref, str) or not ref.startswith("#/"):
            return node
        node = document
        for segment in ref[2:].split("/"):
            node = node.get(segment.replace("~1", "/").replace("~0", "~"), {}) if isinstance(node, dict) else {}
    return node


def _loose_object(schema: Any) -> bool:
    kind = schema.get("type") if isinstance(schema, dict) else None
    return kind in ("object", ["object", "null"]) and not schema.get("required")


def _relax_ambiguous_one_of(document: Any, node: Any) -> None:
    """Turn a `oneOf` whose branches are all objects with no required field into `anyOf`.

    Such branches accept the same bodies (GitHub's 409 is basic-error *or* rule-violation-error, both
    all-optional), so `oneOf` would reject every body; GitHub means "any of these shapes".
    """
    if isinstance(node, list):
        for item in node:
            _relax_ambiguous_one_of(document, item)
        return
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        if key not in ("example", "examples"):
            _relax_ambiguous_one_of(document, value)
    branches = node.get("oneOf")
    if not isinstance(branches, list) or len(branches) < 2 or "discriminator" in node:
        return
    if all(_loose_object(_resolve_local(document, b)) for b in branches):
        node["anyOf"] = node.pop("oneOf")


def _escape(segment: str) -> str:
    return segment.replace("~", "~0").replace("/", "~1")


def _template_regex(template: str, slash_params: frozenset[str]) -> re.Pattern[str]:
    parts = re.split(r"(\{[^}/]+\})", template)
    params = [i for i, part in enumerate(parts) if part.startswith("{")]
    regex = ""
    for i, part in enumerate(parts):
        if i in params:
            # Only a trailing file path, ref or branch may span slashes (heads/main, incidents/INC-7.md).
            spans = i == params[-1] and part[1:-1] in slash_params
            regex += "(.+)" if spans else "([^/]+)"
        else:
            regex += re.escape(part)
    return re.compile(f"^{regex}/?$")


@dataclass(frozen=True)
class _Route:
    template: str
    literal_chars: int
    exact: re.Pattern[str]
    greedy: re.Pattern[str]


def _short(message: str) -> str:
    return message if len(message) <= _MAX_MESSAGE else message[: _MAX_MESSAGE - 3] + "..."


def _format_error(prefix: str, error: Any) -> str:
    where = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    return _short(f"{prefix} at {where}: {error.message}")


class OpenApiSpec:
    """One loaded OpenAPI description: route matching, schema validation and examples."""

    _cache: ClassVar[dict[Path, OpenApiSpec]] = {}
    _cache_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, document: dict[str, Any], slash_params: frozenset[str] = SLASH_PARAMS) -> None:
        self.document: dict[str, Any] = _rewrite_nullable(document)
        _relax_ambiguous_one_of(self.document, self.document)
        resource: Resource[Any] = DRAFT4.create_resource(self.document)
        self._registry: Registry[Any] = Registry().with_resource(_SPEC_URI, resource)
        self._validators: dict[str, Draft4Validator] = {}
        self._lock = threading.Lock()
        routes = [
            _Route(
                template=template,
                literal_chars=len(re.sub(r"\{[^}]+\}", "", template)),
                exact=_template_regex(template, frozenset()),
                greedy=_template_regex(template, slash_params),
            )
            for template in self.document.get("paths", {})
        ]
        # Prefer the most literal template: /issues/comments/{id} over /issues/{number}.
        self._routes = sorted(routes, key=lambda r: r.literal_chars, reverse=True)

    @classmethod
    def load(cls, path: Path) -> OpenApiSpec:
        """Load (once per path) the OpenAPI JSON document at `path`."""
        key = Path(path).resolve()
        with cls._cache_lock:
            spec = cls._cache.get(key)
            if spec is None:
                spec = cls(json.loads(key.read_text(encoding="utf-8")))
                cls._cache[key] = spec
            return spec

    # -- locating operations -------------------------------------------------------------------

    def match(self, method: str, path: str) -> str | None:
        """Return the templated path of the spec that `path` (relative to the server root) matches."""
        path = path.split("?", 1)[0]
        method = method.lower()
        candidates = [r for r in self._routes if r.exact.match(path)] or [
            r for r in self._routes if r.greedy.match(path)
        ]
        with_method = [r for r in candidates if method in self.document["paths"][r.template]]
        chosen = with_method or candidates
        return chosen[0].template if chosen else None

    def _operation(self, method: str, path: str) -> tuple[str, dict[str, Any]] | str:
        """Return (JSON pointer, operation object), or a violation message."""
        template = self.match(method, path)
        if template is None:
            return f"{method.upper()} {path}: no such path in the spec"
        operation = self.document["paths"][template].get(method.lower())
        if not isinstance(operation, dict) or method.lower() not in _METHODS:
            return f"{method.upper()} {path}: method not described for {template}"
        return f"/paths/{_escape(template)}/{method.lower()}", operation

    def _deref(self, node: Any, pointer: str) -> tuple[Any, str]:
        """Follow local `$ref`s (responses, request bodies, examples) to the object they name."""
        seen = 0
        while isinstance(node, dict) and isinstance(node.get("$ref"), str) and seen < 16:
            ref = node["$ref"]
            if not ref.startswith("#/"):
                break
            pointer = ref[1:]
            node = self.document
            for segment in pointer.split("/")[1:]:
                node = node[segment.replace("~1", "/").replace("~0", "~")]
            seen += 1
        return node, pointer

    @staticmethod
    def _json_media(content: dict[str, Any]) -> str | None:
        if "application/json" in content:
            return "application/json"
        for media in content:
            if media.endswith("json"):
                return str(media)
        return None

    def _response_object(self, method: str, path: str, status: int) -> tuple[Any, str] | str:
        found = self._operation(method, path)
        if isinstance(found, str):
            return found
        pointer, operation = found
        responses = operation.get("responses", {})
        for key in (str(status), f"{str(status)[0]}XX", f"{str(status)[0]}xx", "default"):
            if key in responses:
                return self._deref(responses[key], f"{pointer}/responses/{_escape(key)}")
        return f"{method.upper()} {path}: status {status} is not documented"

    # -- validation ----------------------------------------------------------------------------

    def _validator(self, pointer: str) -> Draft4Validator:
        with self._lock:
            validator = self._validators.get(pointer)
            if validator is None:
                validator = Draft4Validator({"$ref": f"{_SPEC_URI}#{pointer}"}, registry=self._registry)
                self._validators[pointer] = validator
            return validator

    def _check(self, pointer: str, body: Any, prefix: str) -> list[str]:
        errors = sorted(self._validator(pointer).iter_errors(body), key=lambda e: list(e.absolute_path))
        return [_format_error(prefix, error) for error in errors]

    def validate_request(self, method: str, path: str, body: Any) -> list[str]:
        """Check a decoded JSON request body; requests without a JSON body schema always pass."""
        found = self._operation(method, path)
        if isinstance(found, str):
            return [found]
        pointer, operation = found
        if "requestBody" not in operation:
            return []
        request_body, body_pointer = self._deref(operation["requestBody"], f"{pointer}/requestBody")
        content = request_body.get("content", {})
        media = self._json_media(content)
        if media is None or "schema" not in content[media]:
            return []
        if body is None:
            if request_body.get("required"):
                return [f"{method.upper()} {path}: request body is required"]
            return []
        schema_pointer = f"{body_pointer}/content/{_escape(media)}/schema"
        return self._check(schema_pointer, body, f"{method.upper()} {path} request")

    def validate_response(self, method: str, path: str, status: int, body: Any) -> list[str]:
        """Check a decoded JSON response body for `status`; undocumented statuses are violations."""
        found = self._response_object(method, path, status)
        if isinstance(found, str):
            return [found]
        response, response_pointer = found
        content = response.get("content") or {}
        media = self._json_media(content)
        if media is None or "schema" not in content[media]:
            return []
        if body is None:
            return [f"{method.upper()} {path}: status {status} needs a body"]
        schema_pointer = f"{response_pointer}/content/{_escape(media)}/schema"
        return self._check(schema_pointer, body, f"{method.upper()} {path} {status} response")

    def documents_status(self, method: str, path: str, status: int) -> bool:
        """Tell whether the operation describes `status` (exactly, by range, or by `default`)."""
        return not isinstance(self._response_object(method, path, status), str)

    def example(self, method: str, path: str, status: int) -> Any:
        """Return a deep copy of the spec's first example body for this response, or None."""
        found = self._response_object(method, path, status)
        if isinstance(found, str):
            return None
        response, pointer = found
        content = response.get("content") or {}
        media = self._json_media(content)
        if media is None:
            return None
        entry = content[media]
        if "example" in entry:
            return copy.deepcopy(entry["example"])
        for named in (entry.get("examples") or {}).values():
            value = self._example_value(named, pointer)
            if value is not None:
                return copy.deepcopy(value)
        return None

    def _example_value(self, named: Any, pointer: str) -> Any:
        # Some examples nest a `$ref` to another Example object inside `value`; unwrap both levels.
        for _ in range(4):
            example, pointer = self._deref(named, pointer)
            if not isinstance(example, dict) or "value" not in example:
                return None
            value = example["value"]
            if not (isinstance(value, dict) and set(value) == {"$ref"}):
                return value
            named = value
        return None
