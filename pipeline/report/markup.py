"""The one door from data to the page: every value the report shows (metrics fields, model and
stage names, params, explanation texts, labels in the SVG) goes through `text`, which escapes it.
Metrics files travel through shared DVC remotes, so any field may hold markup; it must show as
text, never become an element or an attribute."""
from __future__ import annotations

from html import escape


class Html(str):
    """A fragment built by the report's own code, whose data parts went through `text` already;
    `text` passes it through as it is."""


def text(value) -> str:
    """`value` (any type: a metrics field may be a string where a number belongs) as HTML text,
    safe inside an element or a quoted attribute."""
    return value if isinstance(value, Html) else escape(str(value), quote=True)
