"""How GitHub decides which workflow runs an event starts (pure: no I/O), for the sandbox's Actions scheduler.

Sources (GitHub docs):
- "Events that trigger workflows" and "Workflow syntax" (`on.<event>.types`, default activity types,
  `branches`/`paths` filters and their glob patterns, "Filter pattern cheat sheet");
- "Triggering a workflow from a workflow": events made with GITHUB_TOKEN start no workflow run, except
  `workflow_dispatch` and `repository_dispatch`; `workflow_run` follows a completed run, at most three levels;
- "Evaluate expressions in workflows and actions": operators, case-insensitive string comparison, loose
  equality coercing to numbers, `contains`, `startsWith`, `endsWith`, `fromJSON`, the `*` object filter;
- "Control the concurrency of workflows and jobs": a group is an expression over `github`, `inputs`, `vars`
  (and others), compared case-insensitively.

`evaluate` is a small evaluator for the subset of the expression language our workflow files use (the list
above). Anything outside it raises UnsupportedExpression rather than guessing; act, which runs each job the
scheduler starts, evaluates every `if:` again with its own engine, and the scheduler reports a disagreement.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

BOT_LOGIN = "github-actions[bot]"
TOKEN_EXEMPT_EVENTS = frozenset({"workflow_dispatch", "repository_dispatch"})
MAX_WORKFLOW_RUN_DEPTH = 3  # "You can't use workflow_run to chain together more than three levels of workflows."

# Activity types a workflow gets when it names the event without `types:` (docs, "Events that trigger
# workflows": pull_request and pull_request_target default to opened, synchronize and reopened; the others
# to every type).
DEFAULT_TYPES: dict[str, frozenset[str]] = {
    "pull_request": frozenset({"opened", "synchronize", "reopened"}),
    "pull_request_target": frozenset({"opened", "synchronize", "reopened"}),
}


class UnsupportedExpression(ValueError):
    """An expression uses syntax outside the subset this evaluator implements."""


# -- expressions -------------------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>-?\d+(?:\.\d+)?)|(?P<op>==|!=|<=|>=|&&|\|\||[!<>(),.\[\]*])"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_-]*))"
)


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise UnsupportedExpression(f"cannot read the expression at {text[pos : pos + 20]!r}")
        kind = match.lastgroup or ""
        out.append((kind, match.group(kind)))
        pos = match.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return out


def _truthy(value: Any) -> bool:
    return value not in (None, False, 0, "") and value == value  # NaN is falsy


def _number(value: Any) -> float:
    if value is None:
        return 0.0
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip()) if value.strip() else 0.0
        except ValueError:
            return float("nan")
    return float("nan")


def _equal(left: Any, right: Any) -> bool:
    """Loose equality: strings compare case-insensitively; differing primitive types compare as numbers."""
    if isinstance(left, str) and isinstance(right, str):
        return left.casefold() == right.casefold()
    if left is None and right is None:
        return True
    if isinstance(left, (dict, list)) or isinstance(right, (dict, list)):
        return left is right
    return _number(left) == _number(right)


def _to_string(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


class _Parser:
    def __init__(self, text: str, contexts: Mapping[str, Any]) -> None:
        self.tokens = _tokens(text)
        self.pos = 0
        self.contexts = contexts

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if token is None or (value is not None and token[1] != value):
            raise UnsupportedExpression(f"expected {value or 'more'} in the expression, found {token}")
        self.pos += 1
        return token

    def parse(self) -> Any:
        value = self.or_()
        if self.peek() is not None:
            raise UnsupportedExpression(f"unexpected {self.peek()} in the expression")
        return value

    def or_(self) -> Any:
        value = self.and_()
        while self.peek() == ("op", "||"):
            self.take()
            right = self.and_()
            value = value if _truthy(value) else right
        return value

    def and_(self) -> Any:
        value = self.compare()
        while self.peek() == ("op", "&&"):
            self.take()
            right = self.compare()
            value = right if _truthy(value) else value
        return value

    def compare(self) -> Any:
        value = self.unary()
        while self.peek() in (("op", "=="), ("op", "!="), ("op", "<"), ("op", ">"), ("op", "<="), ("op", ">=")):
            op = self.take()[1]
            right = self.unary()
            if op == "==":
                value = _equal(value, right)
            elif op == "!=":
                value = not _equal(value, right)
            else:
                a, b = _number(value), _number(right)
                value = {"<": a < b, ">": a > b, "<=": a <= b, ">=": a >= b}[op]
        return value

    def unary(self) -> Any:
        if self.peek() == ("op", "!"):
            self.take()
            return not _truthy(self.unary())
        return self.postfix()

    def postfix(self) -> Any:
        value = self.primary()
        while self.peek() in (("op", "."), ("op", "[")):
            if self.take()[1] == ".":
                token = self.take()
                if token == ("op", "*"):
                    value = [item for item in value] if isinstance(value, list) else []
                    value = _Filtered(value)
                elif token[0] == "name":
                    value = _property(value, token[1])
                else:
                    raise UnsupportedExpression(f"unexpected {token[1]!r} after '.'")
            else:
                index = self.or_()
                self.take("]")
                value = _property(value, _to_string(index)) if not isinstance(value, list) else _index(value, index)
        return list(value.items) if isinstance(value, _Filtered) else value

    def primary(self) -> Any:
        kind, text = self.take()
        if kind == "str":
            return text[1:-1].replace("''", "'")
        if kind == "num":
            return float(text)
        if (kind, text) == ("op", "("):
            value = self.or_()
            self.take(")")
            return value
        if kind != "name":
            raise UnsupportedExpression(f"unexpected {text!r} in the expression")
        if text in ("true", "false"):
            return text == "true"
        if text == "null":
            return None
        if self.peek() == ("op", "("):
            return self.call(text)
        if text not in self.contexts:
            raise UnsupportedExpression(f"context {text!r} is not available here")
        return self.contexts[text]

    def call(self, name: str) -> Any:
        self.take("(")
        args: list[Any] = []
        while self.peek() != ("op", ")"):
            args.append(self.or_())
            if self.peek() == ("op", ","):
                self.take()
        self.take(")")
        lowered = name.lower()
        if lowered == "contains" and len(args) == 2:
            search, item = args
            if isinstance(search, list):
                return any(_equal(element, item) for element in search)
            return _to_string(item).casefold() in _to_string(search).casefold()
        if lowered == "startswith" and len(args) == 2:
            return _to_string(args[0]).casefold().startswith(_to_string(args[1]).casefold())
        if lowered == "endswith" and len(args) == 2:
            return _to_string(args[0]).casefold().endswith(_to_string(args[1]).casefold())
        if lowered == "fromjson" and len(args) == 1:
            return json.loads(_to_string(args[0]))
        if lowered == "tojson" and len(args) == 1:
            return json.dumps(args[0], indent=2)
        raise UnsupportedExpression(f"function {name}() with {len(args)} argument(s) is not supported here")


@dataclass
class _Filtered:
    """The result of an object filter (`.*`): later property reads map over it."""

    items: list[Any]


def _property(value: Any, name: str) -> Any:
    if isinstance(value, _Filtered):
        return _Filtered([_property(item, name) for item in value.items])
    if isinstance(value, dict):
        # Property names are case-insensitive in expressions.
        if name in value:
            return value[name]
        for key, item in value.items():
            if isinstance(key, str) and key.casefold() == name.casefold():
                return item
    return None


def _index(value: list[Any], index: Any) -> Any:
    number = _number(index)
    if number != number or not number.is_integer() or not 0 <= number < len(value):
        return None
    return value[int(number)]


def evaluate(expression: str, contexts: Mapping[str, Any]) -> Any:
    """Evaluate one expression (without `${{ }}`) against `contexts` ({"github": …, "vars": …})."""
    return _Parser(expression, contexts).parse()


_TEMPLATE = re.compile(r"\$\{\{(.*?)\}\}", re.DOTALL)


def interpolate(text: str, contexts: Mapping[str, Any]) -> str:
    """A string with `${{ expr }}` parts replaced by their values, as for a concurrency group."""
    return _TEMPLATE.sub(lambda m: _to_string(evaluate(m.group(1), contexts)), text)


def condition(text: Any, contexts: Mapping[str, Any]) -> bool:
    """A job's `if:` (with or without `${{ }}`; missing means true)."""
    if text is None:
        return True
    if isinstance(text, bool):
        return text
    source = str(text).strip()
    whole = _TEMPLATE.fullmatch(source)
    return _truthy(evaluate(whole.group(1) if whole else source, contexts))


# -- triggers ----------------------------------------------------------------------------------------------


def triggers(doc: Mapping[Any, Any]) -> dict[str, Mapping[str, Any]]:
    """A workflow's `on:` as {event: filters}; a bare name or list means no filters."""
    on = doc.get("on", doc.get(True))  # a YAML 1.1 loader reads the key `on` as true
    if isinstance(on, str):
        return {on: {}}
    if isinstance(on, list):
        return {str(name): {} for name in on}
    if isinstance(on, dict):
        return {str(name): (filters if isinstance(filters, dict) else {}) for name, filters in on.items()}
    return {}


def glob_regex(pattern: str) -> re.Pattern[str]:
    """GitHub's filter patterns: `*` any characters but `/`, `**` any characters, `?` one character
    (docs, "Filter pattern cheat sheet")."""
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out + r"\Z")


def _matches_patterns(value: str, patterns: Sequence[str]) -> bool:
    """Patterns in order, a later `!pattern` excluding again what an earlier one matched."""
    matched = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        if glob_regex(pattern[1:] if negate else pattern).match(value):
            matched = not negate
    return matched


def _filter_ok(filters: Mapping[str, Any], key: str, values: Sequence[str], *, any_of: bool = True) -> bool:
    include, exclude = filters.get(key), filters.get(f"{key}-ignore")
    if include is not None:
        hits = [_matches_patterns(v, [str(p) for p in include]) for v in values]
        if not (any(hits) if any_of else all(hits)):
            return False
    if exclude is not None:
        remaining = [v for v in values if not _matches_patterns(v, [str(p) for p in exclude])]
        if not remaining:
            return False
    return True


@dataclass(frozen=True)
class Delivery:
    """What the scheduler knows about one event: its name, payload and facts the payload does not carry."""

    event: str
    payload: Mapping[str, Any]
    changed_files: tuple[str, ...] = ()  # push: the files the pushed commits changed
    workflow_run_depth: int = 0  # workflow_run: how many workflow_run levels led here

    @property
    def action(self) -> str | None:
        action = self.payload.get("action")
        return str(action) if action is not None else None

    @property
    def made_with_actions_token(self) -> bool:
        sender = self.payload.get("sender") or {}
        pusher = self.payload.get("pusher") or {}
        return sender.get("login") == BOT_LOGIN or pusher.get("name") == BOT_LOGIN


def why_not_triggered(workflow_name: str, workflow_file: str, doc: Mapping[Any, Any], delivery: Delivery) -> str | None:
    """None when the workflow's `on:` starts a run for this delivery, else the reason it does not."""
    on = triggers(doc)
    if delivery.event not in on:
        return f"{workflow_file} has no `on: {delivery.event}`"
    if delivery.made_with_actions_token and delivery.event not in TOKEN_EXEMPT_EVENTS | {"workflow_run"}:
        return (
            "made with GITHUB_TOKEN: such events start no workflow run (except workflow_dispatch, repository_dispatch)"
        )
    filters = on[delivery.event]
    if delivery.event == "workflow_dispatch":
        wanted = str(delivery.payload.get("workflow") or "")
        if wanted.rsplit("/", 1)[-1] != workflow_file:
            return f"workflow_dispatch was for {wanted or 'another workflow'}"
        return None
    if delivery.event == "workflow_run":
        if delivery.workflow_run_depth >= MAX_WORKFLOW_RUN_DEPTH:
            return f"workflow_run chains stop after {MAX_WORKFLOW_RUN_DEPTH} levels"
        run = delivery.payload.get("workflow_run") or {}
        names = [str(n) for n in filters.get("workflows") or []]
        if str(run.get("name")) not in names:
            return f"{run.get('name')} is not in on.workflow_run.workflows"
        if not _filter_ok(filters, "branches", [str(run.get("head_branch") or "")]):
            return "on.workflow_run.branches does not match"
    types = filters.get("types")
    allowed = frozenset(str(t) for t in types) if types is not None else DEFAULT_TYPES.get(delivery.event)
    if allowed is not None and delivery.action not in allowed:
        return f"activity type {delivery.action!r} is not in on.{delivery.event}.types"
    if delivery.event == "push":
        ref = str(delivery.payload.get("ref") or "")
        if ref.startswith("refs/heads/"):
            if not _filter_ok(filters, "branches", [ref.removeprefix("refs/heads/")]):
                return f"on.push.branches does not match {ref}"
            if ("tags" in filters or "tags-ignore" in filters) and not (
                "branches" in filters or "branches-ignore" in filters
            ):
                return "on.push filters tags only"
        elif ref.startswith("refs/tags/") and not _filter_ok(filters, "tags", [ref.removeprefix("refs/tags/")]):
            return f"on.push.tags does not match {ref}"
    if delivery.event in ("pull_request", "pull_request_target"):
        base = str(((delivery.payload.get("pull_request") or {}).get("base") or {}).get("ref") or "")
        if not _filter_ok(filters, "branches", [base]):
            return f"on.{delivery.event}.branches does not match {base}"
    if (
        delivery.event in ("push", "pull_request", "pull_request_target")
        and ("paths" in filters or "paths-ignore" in filters)
        and not _filter_ok(filters, "paths", list(delivery.changed_files))
    ):
        return f"on.{delivery.event}.paths matches none of the changed files"
    return None


def github_context(delivery: Delivery, repository: str, workflow_name: str, sha: str) -> dict[str, Any]:
    """The parts of the `github` context our expressions read."""
    ref = delivery.payload.get("ref") if delivery.event == "push" else "refs/heads/main"
    actor = (delivery.payload.get("sender") or {}).get("login") or (delivery.payload.get("pusher") or {}).get("name")
    return {
        "event_name": delivery.event,
        "event": dict(delivery.payload),
        "repository": repository,
        "repository_owner": repository.split("/", 1)[0],
        "workflow": workflow_name,
        "ref": ref,
        "ref_name": str(ref or "").removeprefix("refs/heads/"),
        "head_ref": "",
        "sha": sha,
        "actor": actor,
        "triggering_actor": actor,
    }
