"""Griffe extension: the package's `Example:` sections render as examples.

The docstrings follow Google style, but write a singular `Example:` heading
with the doctest lines unindented below it (so that `doctest` and a reader
of the source see plain console sessions). Griffe's Google parser reads a
section only under a heading it knows with its content indented; here each
`Example:` heading becomes `Examples:` with its lines indented up to the next
section heading, so the examples render as Python console blocks. The source
stays as it is.
"""

import re

import griffe

_HEADING = re.compile(r"^(Example|Examples|Args|Arguments|Returns|Yields|Raises|Attributes"
                      r"|Note|Notes|Warning|Warnings|See Also|References):\s*$")


def google_examples(text):
    """The docstring `text` with its `Example:` sections as Google sections."""
    out, inside = [], False
    for line in text.splitlines():
        heading = _HEADING.match(line)
        if heading:
            inside = heading.group(1) in ("Example", "Examples")
            out.append("Examples:" if inside else line)
            continue
        if inside:
            if not out[-1] == "Examples:" or line.strip():
                out.append("    " + line if line.strip() else "")
            continue
        out.append(line)
    return "\n".join(out)


class ExampleSections(griffe.Extension):
    """Rewrites `Example:` sections of every docstring before parsing."""

    def on_instance(self, *, obj, **kwargs):
        if obj.docstring is not None:
            obj.docstring.value = google_examples(obj.docstring.value)
