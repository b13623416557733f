"""Writes are atomic: a write killed half-way leaves the old file (or none) and a temporary
`.NAME.XXXXXXXX.tmp` that no reader opens and the next write of NAME removes; and every file
the package writes goes through metastress.atomic."""

import ast
import json
import signal
import subprocess
import sys
from pathlib import Path

from reliability_helpers import HERE, env

from metastress.atomic import stale_temporaries, write_json

SRC = Path(__file__).resolve().parents[2] / "src" / "metastress"


def test_write_killed_half_way_keeps_the_old_file(tmp_path):
    path = tmp_path / "result.json"
    script = (
        f"import sys; sys.path.insert(0, {str(HERE)!r})\n"
        "from fault_driver import cut_write\n"
        "from metastress.atomic import write_json\n"
        "cut_write('result.json', 2)\n"
        f"write_json({str(path)!r}, {{'version': 1}})\n"
        f"write_json({str(path)!r}, {{'version': 2, 'padding': 'x' * 1000}})\n"
    )
    done = subprocess.run([sys.executable, "-c", script], env=env(), capture_output=True)
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert json.loads(path.read_text()) == {"version": 1}
    (temporary,) = stale_temporaries(path)
    assert 0 < temporary.stat().st_size < len(json.dumps({"padding": "x" * 1000}))
    write_json(path, {"version": 3})
    assert json.loads(path.read_text()) == {"version": 3}
    assert stale_temporaries(path) == [] and sorted(tmp_path.iterdir()) == [path]


def test_only_the_temporaries_of_the_same_name_are_stale(tmp_path):
    names = [
        ".model.pt.ab_9xyz0.tmp",  # a leftover of model.pt
        ".model.pt.bak.ab_9xyz0.tmp",  # of model.pt.bak
        ".model.pt.ab_9xyz0",  # not a temporary
        "model.pt.ab_9xyz0.tmp",
        ".summary.json.ab_9xyz0.tmp",
    ]
    for name in names:
        (tmp_path / name).write_text("partial")
    assert stale_temporaries(tmp_path / "model.pt") == [tmp_path / names[0]]
    write_json(tmp_path / "model.pt", {})
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names[1:] + ["model.pt"])


# Calls that write a file, and the position of their destination argument.
DESTINATION = {"save": 1, "savez": 0, "savez_compressed": 0, "savefig": 0, "dump": 1,
               "copyfile": 1, "copy": 1, "copy2": 1, "to_csv": 0, "to_json": 0}  # fmt: skip
NUMPY_SAVE = {"save": 0}  # np.save(file, array); torch.save(obj, file)
PATH_KEYWORDS = {"f", "file", "fname", "dst", "path_or_buf"}
ATOMIC_WRAPPERS = {"checkpoint.save", "snapshots.save"}  # metastress's own, on atomic_path
STAGED = {("data/download.py", "staged")}  # fetched into a temporary folder, then os.replace


def atomic_names(tree: ast.AST) -> set[str]:
    """Names that stand for an atomic temporary: `with atomic_path(...) as tmp`, files opened
    on one, and the parameters of lambdas handed to write_with."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.With):
            for item in node.items:
                call, target = item.context_expr, item.optional_vars
                if isinstance(call, ast.Call) and isinstance(target, ast.Name):
                    func = ast.unparse(call.func)
                    first = call.args[0] if call.args else None
                    if func.endswith("atomic_path") or (
                        func == "open" and isinstance(first, ast.Name) and first.id in names
                    ):
                        names.add(target.id)
        if isinstance(node, ast.Call) and ast.unparse(node.func).endswith("write_with"):
            for arg in node.args:
                if isinstance(arg, ast.Lambda):
                    names.update(a.arg for a in arg.args.args)
    return names


def destination(node: ast.Call) -> ast.expr | None | bool:
    """The file a call writes to; None for a call that writes no file (False: not a writer)."""
    func = ast.unparse(node.func)
    name = func.rsplit(".", 1)[-1]
    if name == "open":
        modes = node.args[1:2] + [k.value for k in node.keywords if k.arg == "mode"]
        writes = any(isinstance(m, ast.Constant) and set(str(m.value)) & set("wax+") for m in modes)
        return (node.args[0] if node.args else None) if writes else False
    if name not in DESTINATION or not isinstance(node.func, ast.Attribute):
        return False
    index = NUMPY_SAVE[name] if func in ("np.save", "numpy.save") else DESTINATION[name]
    if len(node.args) > index:
        return node.args[index]
    paths = [k.value for k in node.keywords if k.arg in PATH_KEYWORDS]
    return paths[0] if paths else None  # to_csv() without a path returns the text


def non_atomic_writes(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    allowed = atomic_names(tree)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        where = f"{path.relative_to(SRC)}:{node.lineno}: {ast.unparse(node)[:80]}"
        if isinstance(node.func, ast.Attribute) and node.func.attr in ("write_text", "write_bytes"):
            found.append(where)  # Path.write_text; metastress.atomic's is a plain name
            continue
        dest = destination(node)
        if dest is False or dest is None or ast.unparse(node.func) in ATOMIC_WRAPPERS:
            continue
        name = dest.id if isinstance(dest, ast.Name) else None
        if name not in allowed and (str(path.relative_to(SRC)), name) not in STAGED:
            found.append(where)
    return found


def test_every_writer_in_the_package_is_atomic():
    offenders = [
        hit
        for path in sorted(SRC.rglob("*.py"))
        if path.name != "atomic.py"
        for hit in non_atomic_writes(path)
    ]
    assert offenders == [], "write these through metastress.atomic:\n" + "\n".join(offenders)
