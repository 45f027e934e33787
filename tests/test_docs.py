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



REPO_FOLDERS = ("textvae", "recipes", "eval", "docs", "examples", "tests", "data", "published")
PLACEHOLDER = re.compile(r"[<>{}]|\.\.\.|…|[A-Z]{3,}")
"""``recipes/datasets/<dataset>.toml``, ``eval/results/NAME.md``: a pattern, not a file to check."""
OUTPUTS = {"eval/results/benchmarks/gpu_check.md": "what eval/gpu_check.py writes on a GPU machine (docs/gpu.md)"}
"""Files the docs name as what a command writes, not shipped."""


def doc_pages() -> list[Path]:
    return [REPO / "README.md", *sorted(DOCS.rglob("*.md"))]


def named_paths(text: str) -> set[str]:
    """Repository paths a page names: a whole code span (`data/demo`) or, in prose, one that ends in a
    file suffix or a slash (eval/foo.py, recipes/strategies/) — not "textvae/python/torch versions"."""
    pattern = r"(?:%s)/[\w./*<>{}…-]*" % "|".join(REPO_FOLDERS)
    spans = {p for p in re.findall(r"`(%s)`" % pattern, text)}
    prose = {p.rstrip(".,:;") for p in re.findall(r"(?<![\w./~-])(%s)" % pattern, text)}
    prose = {p for p in prose if p.endswith("/") or "." in p.rsplit("/", 1)[-1]}
    return {p for p in spans | prose if not PLACEHOLDER.search(p) and p not in OUTPUTS}


def textvae_commands(text: str) -> set[tuple[str, ...]]:
    """The words after ``textvae`` where a line of a code block or an inline code span starts with it
    (``textvae data list``), not ``from textvae import ...``."""
    lines = [line for block in re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S) for line in block.splitlines()]
    lines += re.findall(r"`([^`\n]+)`", text)
    out = set()
    for line in lines:
        for match in re.finditer(r"(?:^|&&)\s*textvae((?:\s+[a-z][\w-]*){1,2})", line.split("#")[0].strip()):
            out.add(tuple(match.group(1).split()))
    return out


def test_docs_name_only_files_that_exist():
    missing = [f"{page.relative_to(REPO)}: {path}" for page in doc_pages()
               for path in sorted(named_paths(page.read_text(encoding="utf-8")))
               if not (any(REPO.glob(path)) if "*" in path else (REPO / path).exists())]
    assert missing == []


def test_docs_name_only_commands_that_exist():
    import typer.main

    from textvae.cli.main import app

    commands = typer.main.get_command(app).commands
    unknown = []
    for page in doc_pages():
        for words in sorted(textvae_commands(page.read_text(encoding="utf-8"))):
            command = commands.get(words[0])
            sub = getattr(command, "commands", None)
            if command is None or (sub is not None and len(words) > 1 and words[1] not in sub):
                unknown.append(f"{page.relative_to(REPO)}: textvae {' '.join(words)}")
    assert unknown == []


def test_the_docs_checks_catch_what_they_look_for():
    text = "see `eval/table4_probe.py`, recipes/strategies/vae.toml, docs/runs.md and `data/demo`."
    assert named_paths(text) == {"eval/table4_probe.py", "recipes/strategies/vae.toml", "docs/runs.md", "data/demo"}
    assert named_paths("recipes/datasets/<dataset>.toml, `eval/results/NAME.md`, "
                       "textvae/python/torch versions") == set()
    text = "```bash\ntextvae evaluate RUN  # x\npip install . && textvae data fetch ptb\n```\n`textvae --version`"
    assert textvae_commands(text + "\n```python\nfrom textvae import load_run\n```") == {
        ("evaluate",), ("data", "fetch")}
