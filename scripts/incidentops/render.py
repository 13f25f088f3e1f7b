"""One jinja2 environment for every template; user text is data, escaped for where it lands.

Templates live in the ops repository's `templates/` (teams may edit them); the package ships the same
files as defaults. StrictUndefined turns a typo in a template into an error instead of an empty string,
and autoescape is off because the output is markdown: each filter escapes for its own context.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from incidentops.core.incidentfile import UNSAFE_CHARS, clean_line, escape_cell, escape_inline
from incidentops.errors import IncidentOpsError

if TYPE_CHECKING:  # jinja2 is imported by the first render: a run that writes no comment or file never loads it
    import jinja2


def _default_templates_dir() -> Path:
    packaged = Path(__file__).parent / "_default_templates"
    if packaged.is_dir():
        return packaged
    # Editable install or source checkout: the repository's own templates/.
    return Path(__file__).resolve().parents[2] / "templates"


def md_inline(value: Any) -> str:
    """One line of user text inside markdown prose: no HTML, no line breaks, no heading or link tricks."""
    return escape_inline(str(value))


def quote_block(value: Any, limit: int = 20_000) -> str:
    """Multi-line user text as a markdown blockquote, so it can never open a section or close front matter."""
    text = str(value).replace("\r\n", "\n").replace("\r", "\n")
    if len(text) > limit:
        text = text[:limit] + "\n… (truncated; see the issue for the full text)"
    text = UNSAFE_CHARS.sub("", text)  # control and direction-override characters (keeps \n and \t)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return "\n".join("> " + line if line else ">" for line in text.split("\n"))


def code(value: Any) -> str:
    """User text as inline code, with backticks neutralised."""
    text = clean_line(str(value), limit=300).replace("`", "'")
    return f"`{text}`"


def template_environment(workspace: str | None, *, autoescape: bool) -> jinja2.Environment:
    """A jinja2 environment over the workspace's templates first, then the packaged defaults.

    StrictUndefined, trim_blocks and lstrip_blocks everywhere; autoescape only for HTML (the report site).
    """
    import jinja2

    search = [str(Path(workspace) / "templates")] if workspace else []
    search.append(str(_default_templates_dir()))
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(search),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=autoescape,
    )


@lru_cache(maxsize=8)
def environment(workspace: str | None) -> jinja2.Environment:
    """The markdown environment shared by the incident file, comments and summaries."""
    env = template_environment(workspace, autoescape=False)
    env.filters["cell"] = escape_cell
    env.filters["inline"] = md_inline
    env.filters["quote"] = quote_block
    env.filters["code"] = code
    return env


def preload(workspace: Path | None, *names: str) -> None:
    """Load (and compile) templates a run renders later, e.g. on a thread while its requests are in flight. The
    outcome is not consulted: a template that fails here fails again, visibly, where it is rendered."""
    env = environment(str(workspace) if workspace else None)
    for name in names:
        env.get_template(name)


def render(name: str, workspace: Path | None = None, **context: Any) -> str:
    """Render a template by file name with the given data."""
    return render_with(environment(str(workspace) if workspace else None), name, **context)


def render_with(env: jinja2.Environment, name: str, **context: Any) -> str:
    """Render `name` from `env`; a missing or broken template is a user-facing error naming it."""
    import jinja2

    try:
        return env.get_template(name).render(**context)
    except jinja2.TemplateNotFound as exc:
        raise IncidentOpsError(
            f"template {name} not found", hint="Restore it in templates/ (see the incidentops repository)."
        ) from exc
    except jinja2.TemplateError as exc:
        raise IncidentOpsError(
            f"template {name} failed to render: {exc}", hint="Fix the template in templates/ and run again."
        ) from exc
