"""The documentation site: it builds in strict mode (a broken link, a missing
API page or a docstring that fails to render fails it), every public name has
an API entry, the docstrings' parameter lists match the signatures, and the
README stays a short landing page whose links into the docs resolve."""

import importlib
import inspect
import os
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest

import keras_speechmix

ROOT = Path(__file__).resolve().parents[1]

pytest.importorskip("mkdocs", reason="the docs stack (mkdocs-material, mkdocstrings) is not installed")
pytest.importorskip("mkdocstrings_handlers.python")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The site, built with `mkdocs build --strict` into a temporary folder."""
    out = tmp_path_factory.mktemp("site")
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict",
         "--config-file", str(ROOT / "mkdocs.yml"), "--site-dir", str(out)],
        cwd=ROOT, capture_output=True, text=True, env=env, timeout=300)
    assert built.returncode == 0, f"mkdocs build --strict failed:\n{built.stdout[-3000:]}\n{built.stderr[-6000:]}"
    return out


def test_strict_build_writes_every_page(site):
    assert (site / "index.html").exists()
    for page in (ROOT / "docs").rglob("*.md"):
        html = site / page.relative_to(ROOT / "docs").with_suffix(".html")
        assert html.exists(), f"{page} was not built"
    # The figures come from results/, the changelog from the root file.
    assert (site / "results" / "demo_robustness.png").exists()
    if (ROOT / "CHANGELOG.md").exists():
        first = next(line for line in (ROOT / "CHANGELOG.md").read_text().splitlines()
                     if line.strip() and not line.startswith("#"))
        words = re.sub(r"[`*\[\]]", "", first).split()[:3]
        changelog = (site / "changelog.html").read_text()
        assert all(word in changelog for word in words if "(" not in word)


def test_strict_build_fails_on_a_broken_link(tmp_path):
    """Strict mode is on: a page linking to a missing page fails the build."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.md").write_text("# Home\n\nSee [nowhere](missing.md).\n")
    import yaml
    ours = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    config = {key: ours[key] for key in ("site_name", "strict", "validation", "use_directory_urls")}
    (tmp_path / "mkdocs.yml").write_text(yaml.safe_dump(config))
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict",
         "--site-dir", str(tmp_path / "site")],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env=dict(os.environ, NO_MKDOCS_2_WARNING="1"))
    assert built.returncode != 0
    assert "missing.md" in built.stdout + built.stderr


def _inventory(site):
    from mkdocstrings import Inventory
    with open(site / "objects.inv", "rb") as file:
        return list(Inventory.parse_sphinx(file))


def _resolve(identifier):
    """The object an inventory identifier names, importing as needed."""
    parts = identifier.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for part in parts[cut:]:
            obj = getattr(obj, part, None)
        return obj
    return None


def _public_names():
    """(module, name) for every name the API reference must show: the
    package's `__all__`, each subpackage's exports (its `__all__`, or the
    names it serves from its modules), and every module's `__all__`, except
    the command's internal modules (the command is one function, `main`)."""
    wanted = [("keras_speechmix", name) for name in keras_speechmix.__all__]
    for info in pkgutil.walk_packages(keras_speechmix.__path__, "keras_speechmix."):
        if info.name.endswith("__main__") or info.name.startswith("keras_speechmix.cli."):
            continue
        module = importlib.import_module(info.name)
        names = getattr(module, "__all__", None)
        if names is None and info.ispkg:
            names = [n for n in dir(module) if not n.startswith("_")
                     and not inspect.ismodule(getattr(module, n))]
        wanted += [(info.name, name) for name in names or ()]
    wanted.append(("keras_speechmix.cli", "main"))
    return wanted


def test_every_public_name_has_an_api_entry(site):
    inventory = _inventory(site)
    by_last = {}
    for identifier in inventory:
        by_last.setdefault(identifier.rsplit(".", 1)[-1], []).append(identifier)
    wanted = _public_names()
    assert len(wanted) > 100
    missing = []
    for module, name in wanted:
        obj = getattr(importlib.import_module(module), name)
        if not any(_resolve(identifier) is obj for identifier in by_last.get(name, ())):
            missing.append(f"{module}.{name}")
    assert not missing, f"no API entry (docs/api/*.md) for: {missing}"


def test_the_coverage_check_sees_a_missing_name(site):
    """The check above fails for a name whose entry is missing."""
    inventory = _inventory(site)
    assert "keras_speechmix.layer.HiddenMixup" in inventory
    assert not any(_resolve(i) is keras_speechmix.HiddenMixup
                   for i in inventory if i.endswith(".HiddenMixupX"))


def _documented_parameters():
    """(object path, documented names, signature names) for every function
    and class of the package, read statically as the site reads them."""
    import griffe
    sys.path.insert(0, str(ROOT / "docs" / "hooks"))
    try:
        from griffe_sections import ExampleSections
    finally:
        sys.path.pop(0)
    package = griffe.load("keras_speechmix", search_paths=[str(ROOT)],
                          extensions=griffe.load_extensions(ExampleSections()))
    found = []

    def walk(obj):
        for member in obj.members.values():
            if member.is_alias:
                continue
            if member.is_module or member.is_class:
                walk(member)
            if not (member.is_function or member.is_class) or member.docstring is None:
                continue
            function = member if member.is_function else member.members.get("__init__")
            if function is None or function.is_alias:
                continue
            signature = {p.name for p in function.parameters} - {"self", "cls"}
            sections = member.docstring.parse("google", warn_missing_types=False,
                                              warn_unknown_params=False)
            names = [n.strip().lstrip("*") for s in sections if s.kind.value == "parameters"
                     for p in s.value for n in p.name.split(",")]
            if names:
                found.append((member.path, names, signature, function))
    walk(package)
    return found


def test_documented_parameters_are_in_the_signature():
    documented = _documented_parameters()
    assert len(documented) > 50
    wrong = []
    for path, names, signature, function in documented:
        takes_any = any(p.kind.value in ("variadic keyword", "variadic positional")
                        for p in function.parameters)
        stale = [n for n in names if n not in signature and not takes_any]
        if stale:
            wrong.append(f"{path}: {stale}")
    assert not wrong, f"docstrings name parameters their signature lacks: {wrong}"


README_LINK = re.compile(r"\]\(([^)\s]+)\)")


def test_readme_is_a_short_landing_page():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 200
    assert "bash scripts/demo.sh" in text and "bash scripts/test.sh" in text
    assert "bash scripts/docs.sh" in text
    links = [link for link in README_LINK.findall(text) if "://" not in link]
    docs = [link for link in links if link.startswith("docs/")]
    assert len(docs) >= 8, "the README should link into the docs"
    for link in links:
        path = link.split("#")[0]
        assert (ROOT / path).exists(), f"README links to a missing file: {link}"
        if path.endswith(".md") and path.startswith("docs/") and "#" in link:
            anchor = link.split("#")[1]
            headings = [re.sub(r"[^\w\- ]", "", h).strip().lower().replace(" ", "-")
                        for h in re.findall(r"^#+ (.*)$", (ROOT / path).read_text(), re.M)]
            assert anchor in headings, f"README links to a missing heading: {link}"
