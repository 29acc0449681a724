"""Compare the test ids pytest collects at two commits: was any test lost?

Issue 22's "done when" asks that every test outcome stay the same across the
refactoring, save tests rewritten to the new names. This script checks the
"no test lost" half: it checks out each commit in a ``git worktree`` under
/tmp, collects the node ids there with ``pytest --collect-only -q`` (with
``PYTHONPATH=<worktree>`` so that checkout's ``dinodiag`` is imported, not the
editable install; the script prints which one was imported and stops if it is
the wrong one), and prints a markdown report: the counts at each commit, and
every id collected before but not after with its best match after (the same
test in a renamed file, the same name in another file, or the most similar
name) so a reader can see each old test was kept, moved, renamed or merged.

Run from the repository root (this file is not collected by pytest: its name
does not match ``test_*.py``)::

    .venv/bin/python tests/tools/compare_test_ids.py 4c3e911 HEAD
    .venv/bin/python tests/tools/compare_test_ids.py 4c3e911 HEAD --json /tmp/ids.json

The worktrees are removed at the end, also on error or Ctrl-C.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

# A renamed test counts as found when its name is this alike (difflib ratio of
# the function names: "brought" -> "own" renames score 0.82-0.96) ...
CONVINCING_NAME = 0.8
# ... or, under another name, when its body is this alike (difflib ratio of
# the sources' words and symbols: decorators and body, without the def line).
CONVINCING_BODY = 0.6
# A match whose body is less alike than this is flagged for reading, whatever
# its name: the test may have been rewritten to assert something else.
REWRITTEN_BODY = 0.5

# Run inside the worktree: import dinodiag first (so the report can say which
# copy pytest will use: sys.modules keeps it), then collect.
_COLLECT = (
    "import sys, dinodiag, pytest; "
    "print('DINODIAG_FILE=' + dinodiag.__file__, file=sys.stderr, flush=True); "
    "sys.exit(pytest.main(sys.argv[1:]))"
)


@dataclass(frozen=True)
class Collection:
    """The ids collected at one commit and where dinodiag came from."""

    commit: str  # full sha
    ids: tuple[str, ...]
    dinodiag_file: str  # the dinodiag/__init__.py pytest imported
    errors: int  # collection errors pytest reported
    summary: str  # pytest's last line ("1235 tests collected in 9.1s")


@dataclass(frozen=True)
class Match:
    """The best counterpart after the change of an id missing after it."""

    old_id: str
    new_id: str | None
    kind: str  # see _match's docstring
    name_similarity: float  # 0..1, of the function names
    body_similarity: float  # 0..1, of the function sources (see Sources)

    @property
    def needs_reading(self) -> bool:
        """True when the match alone does not show that the old test was kept."""
        return self.kind == "unmatched" or self.body_similarity < REWRITTEN_BODY


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout.strip()


def collect(repo: Path, commit: str, python: str, workdir: Path) -> Collection:
    """Check out commit in a worktree under workdir and collect its test ids."""
    sha = _git(repo, "rev-parse", "--verify", f"{commit}^{{commit}}")
    tree = workdir / f"worktree_{sha[:10]}"
    _git(repo, "worktree", "add", "--detach", str(tree), sha)
    try:
        env = dict(os.environ, PYTHONPATH=str(tree), OMP_NUM_THREADS="1")
        done = subprocess.run(
            [python, "-c", _COLLECT, "--collect-only", "-q", "-p", "no:cacheprovider"],
            cwd=tree,
            env=env,
            capture_output=True,
            text=True,
        )
    finally:
        _git(repo, "worktree", "remove", "--force", str(tree))
    found = re.search(r"^DINODIAG_FILE=(.*)$", done.stderr, re.MULTILINE)
    dinodiag_file = found.group(1) if found else "(dinodiag not imported)"
    if not dinodiag_file.startswith(str(tree) + os.sep):
        raise SystemExit(
            f"at {sha[:10]} pytest would import dinodiag from {dinodiag_file}, "
            f"not from the worktree {tree}: is PYTHONPATH overridden by a .pth file?"
        )
    lines = done.stdout.splitlines()
    ids = tuple(line for line in lines if "::" in line and not line.startswith(" "))
    summary = next((line for line in reversed(lines) if line.strip()), "")
    errors = re.search(r"(\d+) errors?", summary)
    if done.returncode not in (0, 5) or not ids:  # 5: nothing collected
        raise SystemExit(
            f"pytest --collect-only failed at {sha[:10]} (exit {done.returncode}):\n"
            + "\n".join((done.stdout + done.stderr).splitlines()[-30:])
        )
    return Collection(
        sha,
        ids,
        dinodiag_file.replace(str(tree), "<worktree>"),
        int(errors.group(1)) if errors else 0,
        summary,
    )


def renamed_files(repo: Path, before: str, after: str) -> dict[str, str]:
    """Test files git sees as renamed between the commits (old path -> new)."""
    out = _git(repo, "diff", "--find-renames", "--name-status", before, after, "--", "tests")
    renames = {}
    for line in out.splitlines():
        status, *paths = line.split("\t")
        if status.startswith("R") and len(paths) == 2:
            renames[paths[0]] = paths[1]
    return renames


def _split(node_id: str) -> tuple[str, str]:
    """'tests/a/test_x.py::Cls::test_y[p]' -> ('tests/a/test_x.py', 'Cls::test_y[p]')."""
    path, _, name = node_id.partition("::")
    return path, name


def _bare(name: str) -> str:
    """The function name alone: no class, no parameters."""
    return name.split("::")[-1].split("[")[0]


def _function(node_id: str) -> tuple[str, str]:
    """(file, 'Cls.test_y' or 'test_y'): the function an id runs, parameters dropped."""
    path, name = _split(node_id)
    return path, ".".join(name.split("[")[0].split("::"))


def _similarity(a: str, b: str) -> float:
    return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()


def _tokens(source: str) -> tuple[str, ...]:
    """Python source as words and symbols: what a body comparison looks at."""
    return tuple(re.findall(r"\w+|[^\w\s]", source))


class Sources:
    """The source of each test function at a commit, read with git show and ast."""

    def __init__(self, repo: Path, commit: str) -> None:
        self.repo, self.commit = repo, commit
        self._files: dict[str, dict[str, str]] = {}

    def functions(self, path: str) -> dict[str, str]:
        """'Cls.test_y' / 'test_y' -> its source (decorators, docstring and body)."""
        if path not in self._files:
            try:
                text = _git(self.repo, "show", f"{self.commit}:{path}")
                tree = ast.parse(text)
            except (subprocess.CalledProcessError, SyntaxError):
                self._files[path] = {}
                return self._files[path]
            found = {}
            for node in tree.body:
                members = node.body if isinstance(node, ast.ClassDef) else [node]
                prefix = f"{node.name}." if isinstance(node, ast.ClassDef) else ""
                for member in members:
                    if isinstance(member, ast.FunctionDef | ast.AsyncFunctionDef):
                        source = ast.get_source_segment(text, member) or ""
                        found[prefix + member.name] = source.split(":", 1)[-1]
            self._files[path] = found
        return self._files[path]

    def of(self, node_id: str) -> str:
        path, function = _function(node_id)
        return self.functions(path).get(function, "")


def _best(old_id: str, candidates: list[str], old: Sources, new: Sources) -> tuple[str, float]:
    """The candidate whose function body is most like old_id's, and that likeness.

    Among the parametrisations of the best function, the id most like old_id.
    """
    old_source = _tokens(old.of(old_id))
    by_function: dict[tuple[str, str], list[str]] = {}
    for candidate in candidates:
        by_function.setdefault(_function(candidate), []).append(candidate)
    best_body, best_ids = -1.0, candidates[:1]
    for ids in by_function.values():
        matcher = difflib.SequenceMatcher(None, old_source, _tokens(new.of(ids[0])), autojunk=False)
        if matcher.real_quick_ratio() <= best_body or matcher.quick_ratio() <= best_body:
            continue
        if (body := matcher.ratio()) > best_body:
            best_body, best_ids = body, ids
    return max(best_ids, key=lambda c: _similarity(old_id, c)), max(best_body, 0.0)


def _match(
    old_id: str, after: list[str], renames: dict[str, str], old: Sources, new: Sources
) -> Match:
    """Find old_id's best counterpart among the ids collected after.

    kinds, most convincing first:
    renamed-file   same name (parameters included) in the file git renamed it to
    moved          same name (parameters included) in another file
    params-changed same function, same file, other parameters
    moved-params   same function in another file, other parameters
    similar-name   the most similar name, at least CONVINCING_NAME
    similar-body   another name, but a body at least CONVINCING_BODY alike
    unmatched      neither: read the old test (merged into another, or dropped?)
    """
    path, name = _split(old_id)
    new_path = renames.get(path)
    same_name = [i for i in after if _split(i)[1] == name]
    if new_path and f"{new_path}::{name}" in same_name:
        new_id = f"{new_path}::{name}"
        return Match(old_id, new_id, "renamed-file", 1.0, _body(old_id, new_id, old, new))
    if same_name:
        new_id, body = _best(old_id, same_name, old, new)
        return Match(old_id, new_id, "moved", 1.0, round(body, 3))
    bare = _bare(name)
    same_function = [i for i in after if _bare(_split(i)[1]) == bare]
    here = [i for i in same_function if _split(i)[0] in (path, new_path)]
    if same_function:
        new_id, body = _best(old_id, here or same_function, old, new)
        kind = "params-changed" if here else "moved-params"
        return Match(old_id, new_id, kind, 1.0, round(body, 3))
    named_score, named = 0.0, []
    for candidate in after:
        score = _similarity(bare, _bare(_split(candidate)[1]))
        if score > named_score:
            named_score, named = score, [candidate]
        elif score == named_score:
            named.append(candidate)
    if named_score >= CONVINCING_NAME:
        new_id, body = _best(old_id, named, old, new)
        return Match(old_id, new_id, "similar-name", round(named_score, 3), round(body, 3))
    # A renamed and rewritten test: look for its body among every test after.
    new_id, body = _best(old_id, after, old, new)
    kind = "similar-body" if body >= CONVINCING_BODY else "unmatched"
    return Match(
        old_id, new_id, kind, round(_similarity(bare, _bare(_split(new_id)[1])), 3), round(body, 3)
    )


def _body(old_id: str, new_id: str, old: Sources, new: Sources) -> float:
    return round(_similarity(_tokens(old.of(old_id)), _tokens(new.of(new_id))), 3)


def report(before: Collection, after: Collection, matches: list[Match], renames: dict) -> str:
    """The markdown report: counts, then every missing id with its match."""
    before_ids, after_ids = set(before.ids), set(after.ids)
    kinds = [m.kind for m in matches]
    order = [
        "renamed-file",
        "moved",
        "params-changed",
        "moved-params",
        "similar-name",
        "similar-body",
        "unmatched",
    ]
    lines = [
        f"## Test ids: {before.commit[:10]} -> {after.commit[:10]}",
        "",
        "| | before | after |",
        "|---|---:|---:|",
        f"| commit | `{before.commit[:10]}` | `{after.commit[:10]}` |",
        f"| dinodiag imported from | `{before.dinodiag_file}` | `{after.dinodiag_file}` |",
        f"| ids collected | {len(before.ids)} | {len(after.ids)} |",
        f"| collection errors | {before.errors} | {after.errors} |",
        f"| test files | {len({_split(i)[0] for i in before.ids})} "
        f"| {len({_split(i)[0] for i in after.ids})} |",
        "",
        f"- in both: {len(before_ids & after_ids)}",
        f"- before only (listed below): {len(before_ids - after_ids)}",
        f"- after only (new or renamed): {len(after_ids - before_ids)}",
        f"- test files git sees as renamed: {len(renames)}",
        "",
        "| match of a before-only id | ids |",
        "|---|---:|",
        *(f"| {k} | {kinds.count(k)} |" for k in order if k in kinds),
        "",
        f"Read by hand: {sum(m.needs_reading for m in matches)} "
        f"(unmatched, or a body less than {REWRITTEN_BODY:.0%} alike; marked **read**).",
        "",
        "| before only | match | best match after | name alike | body alike |",
        "|---|---|---|---:|---:|",
    ]
    for m in sorted(matches, key=lambda m: (order.index(m.kind), m.old_id)):
        new = f"`{m.new_id}`" if m.new_id else "-"
        flag = " **read**" if m.needs_reading else ""
        lines.append(
            f"| `{m.old_id}` | {m.kind}{flag} | {new} "
            f"| {m.name_similarity:.2f} | {m.body_similarity:.2f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("before", help="the commit before the change (sha, tag, HEAD~3)")
    parser.add_argument("after", nargs="?", default="HEAD", help="the commit after (HEAD)")
    parser.add_argument("--repo", type=Path, default=Path.cwd(), help="the git repository")
    parser.add_argument(
        "--python", default=sys.executable, help="interpreter with pytest and the deps"
    )
    parser.add_argument("--json", type=Path, help="also write every id and match here")
    args = parser.parse_args(argv)
    repo = Path(_git(args.repo, "rev-parse", "--show-toplevel"))
    with tempfile.TemporaryDirectory(prefix="compare_test_ids_") as workdir:
        try:
            before = collect(repo, args.before, args.python, Path(workdir))
            after = collect(repo, args.after, args.python, Path(workdir))
        finally:
            _git(repo, "worktree", "prune")
    renames = renamed_files(repo, before.commit, after.commit)
    after_ids = list(after.ids)
    missing = sorted(set(before.ids) - set(after.ids))
    old, new = Sources(repo, before.commit), Sources(repo, after.commit)
    matches = [_match(old_id, after_ids, renames, old, new) for old_id in missing]
    print(report(before, after, matches, renames))
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "before": asdict(before),
                    "after": asdict(after),
                    "renamed_files": renames,
                    "matches": [asdict(m) | {"needs_reading": m.needs_reading} for m in matches],
                },
                indent=1,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
