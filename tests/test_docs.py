"""The documentation ships with the code: every registered method has its section, links resolve,
and nothing points at files outside the repository."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from textvae.priors import PRIORS
from textvae.strategies import STRATEGIES

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
PAGES_OF_OTHER_ISSUES = {"runs.md", "sweeps.md", "gpu.md", "methods/agg-vae.md", "methods/sa-vae.md",
                         "methods/skip-vae.md", "methods/mae.md", "methods/pretraining.md"}
"""Pages other work in progress writes; index.md links them already, and they are checked once they exist."""


def index_pages() -> dict[str, str]:
    """Registry name -> the methods page docs/index.md links it to."""
    pages = {}
    for row in (DOCS / "index.md").read_text(encoding="utf-8").splitlines():
        link = re.search(r"\]\((methods/[^)]+\.md)\)", row)
        if row.startswith("|") and link:
            for name in re.findall(r"`([a-z0-9-]+)`", row.split("|")[1]):
                pages[name] = link.group(1)
    return pages


@pytest.mark.parametrize("kind, registry", [("strategy", STRATEGIES), ("prior", PRIORS)])
def test_every_registered_method_has_its_docs_section_and_index_entry(kind, registry):
    pages = index_pages()
    assert [name for name in registry.names() if name not in pages] == [], f"{kind}s missing from docs/index.md"
    # A page another issue is writing is checked once it exists.
    written = [name for name in registry.names() if pages[name] not in PAGES_OF_OTHER_ISSUES
               or (DOCS / pages[name]).exists()]
    missing = [name for name in written if not (DOCS / pages[name]).exists()
               or f"`{name}`" not in (DOCS / pages[name]).read_text(encoding="utf-8")]
    assert missing == [], f"{kind}s whose docs/methods page does not document them: {missing}"


def test_links_in_the_docs_and_readme_resolve():
    broken = []
    for page in [REPO / "README.md", *DOCS.rglob("*.md")]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text(encoding="utf-8")):
            if re.match(r"[a-z]+:", target):
                continue
            path = (page.parent / target).resolve()
            pending = str(path.relative_to(DOCS)) in PAGES_OF_OTHER_ISSUES if path.is_relative_to(DOCS) else False
            if not path.exists() and not pending:
                broken.append(f"{page.relative_to(REPO)} -> {target}")
    assert broken == []


def test_nothing_cites_files_users_do_not_have():
    offenders = []
    for folder in ("textvae", "recipes", "eval", "docs", "examples"):
        for path in (REPO / folder).rglob("*"):
            if path.is_file() and path.suffix in {".py", ".toml", ".md", ".txt"}:
                text = path.read_text(encoding="utf-8", errors="replace")
                if "SPEC_NOTES" in text or "shared/reference" in text:
                    offenders.append(str(path.relative_to(REPO)))
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert offenders == [] and "SPEC_NOTES" not in readme
