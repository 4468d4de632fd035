"""Imports run downward only (docs/architecture.md): parsed from the source, not from what happens to be
imported at run time, so a lazy import inside a function counts the same as one at the top."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("regnet", "mturk", "eval_server")

# Rank of each layer, low to high: a module may import its own layer and any lower one, never a higher
# one, and never another layer of the same rank. The roof (CLI, verbs, pipelines) is the only place that
# sees all three packages.
RANKS: dict[str, int] = {
    # the floor every package stands on
    "regnet.errors": -1, "regnet": 0, "regnet.atomic": 0, "regnet.log": 0, "regnet.torchfile": 0,
    "regnet.tables": 0, "regnet.device": 0, "regnet.mturk_xml": 0,
    "regnet.config": 1,
    "regnet.deviations": 2,
    "regnet.data": 3, "regnet.clips": 3,
    "regnet.models": 4,
    "regnet.vocoder": 5,
    "regnet.train": 6,
    "regnet.authors": 7,
    "regnet.generation": 8, "regnet.metrics": 8,
    # the human study and the server stand side by side on the core, neither imports the other
    "mturk": 10, "eval_server": 10,
    # the roof: pipelines chain library calls, verbs call one library function or one pipeline each
    "regnet.pipelines": 20, "regnet.commands": 21, "regnet.cli": 22,
}


def layer_of(module: str) -> str:
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        name = ".".join(parts[:n])
        if name in RANKS:
            return name
    raise KeyError(module)


def modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for f in sorted((REPO / pkg).rglob("*.py")):
            parts = list(f.relative_to(REPO).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = f
    return out


def imports_of(module: str, path: Path) -> list[tuple[int, str]]:
    is_pkg = path.name == "__init__.py"
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_pkg else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            out.append((node.lineno, name))
    return [(line, name) for line, name in out if name.split(".")[0] in PACKAGES]


def upward_arrows(mods: dict[str, Path] | None = None) -> list[str]:
    bad = []
    for module, path in (mods or modules()).items():
        src = layer_of(module)
        for line, target in imports_of(module, path):
            dst = layer_of(target)
            if dst == src or dst.startswith(src + ".") or src.startswith(dst + "."):
                continue
            if RANKS[dst] >= RANKS[src]:
                where = path.relative_to(REPO) if path.is_relative_to(REPO) else path
                bad.append(f"{where}:{line}: {src} (rank {RANKS[src]}) imports {target} "
                           f"({dst}, rank {RANKS[dst]})")
    return bad


def test_every_module_has_a_layer():
    missing = []
    for module in modules():
        try:
            layer_of(module)
        except KeyError:
            missing.append(module)
    assert not missing, f"modules without a layer in RANKS: {missing}"


def test_imports_run_downward_only():
    bad = upward_arrows()
    assert not bad, "upward or sideways imports:\n" + "\n".join(bad)


def test_core_sees_neither_the_study_nor_the_server():
    core = [m for m in modules() if layer_of(m).startswith("regnet") and RANKS[layer_of(m)] < 10]
    offending = [(m, t) for m in core for _, t in imports_of(m, modules()[m])
                 if t.split(".")[0] in ("mturk", "eval_server")]
    assert not offending


@pytest.mark.parametrize("src,target", [("regnet.data.extract", "mturk.study"),
                                        ("eval_server.worker", "mturk.votes"),
                                        ("mturk.collect", "regnet.commands.study"),
                                        ("regnet.vocoder.wavenet", "regnet.authors.checkpoints")])
def test_the_rule_catches_an_upward_arrow(src, target, tmp_path):
    # The check itself can fail: one added upward import is reported with its file and line.
    real = modules()
    fake = tmp_path / real[src].name
    text = real[src].read_text(encoding="utf-8")
    fake.write_text(text + f"\nimport {target}\n", encoding="utf-8")
    line = len(text.splitlines()) + 2
    bad = [b for b in upward_arrows({**real, src: fake}) if target in b]
    assert bad == [f"{fake}:{line}: {layer_of(src)} (rank {RANKS[layer_of(src)]}) imports {target} "
                   f"({layer_of(target)}, rank {RANKS[layer_of(target)]})"]
