"""Regenerate the Python code for the wire contract (``make proto``).

protoc writes modules that import each other as ``fedsync.v1``; the project ships them as
``sync.pb.fedsync.v1``, so imports are rewritten to be package-qualified (the approach of
temporalio's ``scripts/gen_protos.py``). Never edit ``sync/pb`` by hand: a test regenerates
into a temporary directory and fails when the committed copy differs.

Usage: python scripts/gen_protos.py [OUT_DIR]   (default: sync/pb)
"""

from __future__ import annotations

import re
import shutil
import sys
import sysconfig
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "proto"
PACKAGE_PREFIX = "sync.pb"
_IMPORT_RE = re.compile(r"^(from|import) fedsync\.v1", re.MULTILINE)


def _plugin(name: str) -> str:
    """The mypy-protobuf plugins live next to the interpreter running this script."""
    for folder in (Path(sys.executable).parent, Path(sysconfig.get_path("scripts"))):
        candidate = folder / name
        if candidate.exists():
            return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise SystemExit(f"{name} not found: install the dev extras (pip install -e '.[dev]')")
    return found


def generate(out_dir: Path) -> list[Path]:
    """Generate every ``proto/**/*.proto`` into ``out_dir`` and return the files written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    protos = sorted(str(p.relative_to(PROTO_DIR)) for p in PROTO_DIR.rglob("*.proto"))
    well_known = Path(protoc.__file__).parent / "_proto"
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_DIR}",
        f"-I{well_known}",
        f"--plugin=protoc-gen-mypy={_plugin('protoc-gen-mypy')}",
        f"--plugin=protoc-gen-mypy_grpc={_plugin('protoc-gen-mypy_grpc')}",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        f"--mypy_out={out_dir}",
        f"--mypy_grpc_out={out_dir}",
        *protos,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    written: list[Path] = []
    for path in sorted(out_dir.rglob("*.py*")):
        if path.suffix not in (".py", ".pyi"):
            continue
        text = path.read_text()
        fixed = _IMPORT_RE.sub(rf"\1 {PACKAGE_PREFIX}.fedsync.v1", text)
        fixed = fixed.replace(
            "fedsync.v1.federation_pb2", f"{PACKAGE_PREFIX}.fedsync.v1.federation_pb2"
        )
        fixed = fixed.replace(f"{PACKAGE_PREFIX}.{PACKAGE_PREFIX}.", f"{PACKAGE_PREFIX}.")
        if fixed != text:
            path.write_text(fixed)
        written.append(path)
    for folder in {p.parent for p in written} | {out_dir, out_dir / "fedsync"}:
        init = folder / "__init__.py"
        if not init.exists():
            init.write_text("")
            written.append(init)
    return written


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "sync" / "pb"
    for written_path in generate(target):
        print(
            written_path.relative_to(target.parent)
            if target in written_path.parents
            else written_path
        )
