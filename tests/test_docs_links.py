"""Every link in README.md and docs/*.md leads somewhere true.

The front page (README.md) and the chapters in ``docs/`` link to each other, to figures and to
sections (``docs/joint.md#goals``). This file parses their markdown links and images to local files
and their ``#anchors``, and checks that each target file exists and that each anchor is a heading of
its target, with GitHub's rules for heading anchors (the ``github-slugger`` package GitHub uses):

* the heading's text as rendered (inline code keeps its text, link text stays, markup goes),
  lower-cased;
* every character that is not a letter, a number, a combining mark, a connector punctuation such as
  ``_``, a hyphen or a space is dropped (so ``σ`` and ``²`` stay, ``:``, ``(``, ``'``, ``.``, ``+`` and
  ``→`` go);
* each space becomes ``-`` (two spaces give ``--``; nothing is collapsed);
* a slug already used in the file gets ``-1``, then ``-2``, ...

Headings and links inside fenced code blocks are not markdown and are skipped (a ``# comment`` in a
shell block is no heading). External links (``http://``, ``https://``, ``mailto:``) are not fetched.
"""

from __future__ import annotations

import os
import re
import shutil
import unicodedata
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parent.parent

_FENCE = re.compile(r"^\s*(```|~~~)")
_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)[ \t]*#*[ \t]*$")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1")
_LINK = re.compile(r"!?\[((?:[^\[\]]|\[[^\[\]]*\])*)\]\(\s*<?([^()\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
_EXTERNAL = ("http://", "https://", "mailto:", "ftp://")


def _markdown_lines(text):
    """Yield (line number, line) for the lines of ``text`` outside fenced code blocks."""
    fence = None
    for number, line in enumerate(text.splitlines(), 1):
        match = _FENCE.match(line)
        if match:
            if fence is None:
                fence = match.group(1)
            elif match.group(1) == fence:
                fence = None
            continue
        if fence is None:
            yield number, line


def _rendered_heading_text(source):
    """The heading's text as GitHub renders it: code spans keep their text, links their label."""
    text = _CODE_SPAN.sub(lambda m: m.group(2).strip(), source)
    text = _LINK.sub(lambda m: m.group(1), text)
    return text.replace("**", "").replace("__", "")


def github_slug(heading_text):
    """GitHub's anchor for a heading (without the ``-1`` of duplicates).

    Parameters
    ----------
    heading_text : str
        The heading's markdown source after the ``#`` marks.

    Returns
    -------
    str
        Lower-cased; letters, numbers, combining marks, connector punctuation and ``-`` kept; each
        space turned into ``-``; everything else dropped.
    """
    kept = []
    for char in _rendered_heading_text(heading_text).lower():
        category = unicodedata.category(char)
        if char == " ":
            kept.append("-")
        elif char == "-" or category[0] in "LMN" or category == "Pc":
            kept.append(char)
    return "".join(kept)


def anchors(text):
    """Every heading anchor of a markdown text, duplicates numbered as GitHub numbers them."""
    occurrences = {}
    for _, line in _markdown_lines(text):
        match = _HEADING.match(line)
        if not match:
            continue
        original = slug = github_slug(match.group(2))
        while slug in occurrences:
            occurrences[original] += 1
            slug = f"{original}-{occurrences[original]}"
        occurrences[slug] = 0
    return set(occurrences)


def local_links(text):
    """Yield (line number, target) for every markdown link or image outside code to a local target."""
    for number, line in _markdown_lines(text):
        line = _CODE_SPAN.sub(lambda m: "", line)
        for match in _LINK.finditer(line):
            target = match.group(2)
            if target and not target.startswith(_EXTERNAL):
                yield number, target


def broken_links(files, root):
    """Check every local link of ``files``; return one message per link that leads nowhere.

    Parameters
    ----------
    files : list of pathlib.Path
        Markdown files; relative targets are resolved from each file's folder.
    root : pathlib.Path
        Repository root, for the messages and to refuse targets outside it.

    Returns
    -------
    problems : list of str
        ``"README.md:12: docs/x.md#y: no heading with anchor 'y' in docs/x.md"`` and the like.
    checked : int
        How many links were checked.
    """
    root = Path(os.path.abspath(root))
    anchor_cache = {}
    problems = []
    checked = 0
    for path in files:
        path = Path(os.path.abspath(path))
        where = path.relative_to(root).as_posix()
        for number, target in local_links(path.read_text(encoding="utf-8")):
            checked += 1
            file_part, _, fragment = target.partition("#")
            # normalised, not resolved: a symbolic link inside the tree stays inside it
            target_path = Path(os.path.normpath(path.parent / unquote(file_part))) if file_part else path
            if not target_path.is_relative_to(root):
                problems.append(f"{where}:{number}: {target}: leads outside the repository")
                continue
            if not target_path.exists():
                problems.append(f"{where}:{number}: {target}: no such file "
                                f"{target_path.relative_to(root).as_posix()}")
                continue
            if not fragment:
                continue
            if target_path.suffix.lower() != ".md":
                problems.append(f"{where}:{number}: {target}: an anchor into a file that is not markdown")
                continue
            if target_path not in anchor_cache:
                anchor_cache[target_path] = anchors(target_path.read_text(encoding="utf-8"))
            if unquote(fragment) not in anchor_cache[target_path]:
                problems.append(f"{where}:{number}: {target}: no heading with anchor "
                                f"'{unquote(fragment)}' in {target_path.relative_to(root).as_posix()}")
    return problems, checked


def _documentation_files(root):
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


@pytest.mark.parametrize(("heading", "slug"), [
    ("The front door: `restore(map)`", "the-front-door-restoremap"),
    ("Blind restoration: L0 intensity + gradient prior, and blind σ → RL",
     "blind-restoration-l0-intensity--gradient-prior-and-blind-σ--rl"),
    ("4. From the map alone (`estimate_sigma`)", "4-from-the-map-alone-estimate_sigma"),
    ("Border rule and halo — what makes tiles equal the whole map",
     "border-rule-and-halo--what-makes-tiles-equal-the-whole-map"),
    ("On a dask.distributed cluster", "on-a-daskdistributed-cluster"),
    ("The paper's experiment, reproducible (USAF-1951)", "the-papers-experiment-reproducible-usaf-1951"),
    ("Streaming Zarr / HDF5 → Zarr", "streaming-zarr--hdf5--zarr"),
    ("Large maps, 2048²", "large-maps-2048²"),
    ("A [linked](https://example.org) **bold** heading", "a-linked-bold-heading"),
])
def test_github_slug_follows_githubs_rules(heading, slug):
    assert github_slug(heading) == slug


def test_duplicate_headings_are_numbered_and_code_blocks_hold_no_headings():
    text = "# Measured\n\n## Measured\n\n```bash\n# Measured\n```\n\n### Measured\n\n#### Measured-1\n"
    # GitHub: measured, measured-1, measured-2; the literal heading "Measured-1" then takes the
    # next free number of its own slug; the shell comment is not a heading
    assert anchors(text) == {"measured", "measured-1", "measured-2", "measured-1-1"}


def test_every_link_and_anchor_of_the_documentation_resolves():
    files = _documentation_files(ROOT)
    assert len(files) >= 10, "README.md and the docs/ chapters"
    problems, checked = broken_links(files, ROOT)
    assert problems == []
    # the check is not vacuous: the front page alone links to every chapter and several figures
    assert checked >= 50


#: the logs of the QA passes, written before README was split into chapters; reached from README
_QA_LOGS = {"qa_real_maps.md", "figures_qa.md"}


def test_every_chapter_is_linked_from_the_front_page_and_links_back():
    from_readme = {Path(t.split("#")[0]).name for _, t in local_links((ROOT / "README.md").read_text(encoding="utf-8"))
                   if t.startswith("docs/")}
    for path in sorted((ROOT / "docs").glob("*.md")):
        assert path.name in from_readme, path.name
        if path.name in _QA_LOGS:
            continue
        targets = [t for _, t in local_links(path.read_text(encoding="utf-8"))]
        assert targets and targets[0].split("#")[0] == "../README.md", path.name


def _copy_of_the_documentation(tmp_path):
    """README.md and docs/ copied; every other top-level entry linked, so figure links still resolve."""
    for entry in ROOT.iterdir():
        if entry.name in {"README.md", "docs", ".git"}:
            continue
        os.symlink(entry, tmp_path / entry.name)
    shutil.copy(ROOT / "README.md", tmp_path / "README.md")
    shutil.copytree(ROOT / "docs", tmp_path / "docs")
    return tmp_path


def test_planted_broken_links_are_caught(tmp_path):
    copy = _copy_of_the_documentation(tmp_path)
    assert broken_links(_documentation_files(copy), copy)[0] == []

    readme = copy / "README.md"
    lines = readme.read_text(encoding="utf-8").splitlines()
    planted = len(lines) + 2
    lines += [
        "",
        "See [the goals](docs/front_door.md#goalz), [the joint chapter](docs/jiont.md), "
        "[this page](#no-such-section) and ![a figure](benchmarks/no_such_figure.png).",
        "[A section inside a code block](docs/joint.md#fake-heading), `[not a link](docs/none.md)`.",
    ]
    readme.write_text("\n".join(lines) + "\n", encoding="utf-8")
    chapter = copy / "docs" / "joint.md"
    chapter.write_text(chapter.read_text(encoding="utf-8") + "\n```bash\n# fake heading\n```\n",
                       encoding="utf-8")

    problems, _ = broken_links(_documentation_files(copy), copy)
    assert problems == [
        f"README.md:{planted}: docs/front_door.md#goalz: no heading with anchor 'goalz' in docs/front_door.md",
        f"README.md:{planted}: docs/jiont.md: no such file docs/jiont.md",
        f"README.md:{planted}: #no-such-section: no heading with anchor 'no-such-section' in README.md",
        f"README.md:{planted}: benchmarks/no_such_figure.png: no such file benchmarks/no_such_figure.png",
        f"README.md:{planted + 1}: docs/joint.md#fake-heading: no heading with anchor 'fake-heading' "
        "in docs/joint.md",
    ]
