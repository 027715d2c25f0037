"""Builds the engine unit tests' real objects (once per test session) and fakes the rest of
the running process: an `Executable` made from a symbol list instead of a linked file."""

from __future__ import annotations

import subprocess
from pathlib import Path

from hotline.engine.link.elf_objects import STT_FUNC, STT_TLS, ObjectFile, Symbol, read_object
from hotline.engine.link.executable import Executable

HERE = Path(__file__).parent
STT_OBJECT = 1
STB_GLOBAL = 1


def rustc(
    out_dir: Path, source: str, *args: str, crate_type: str = "lib", name: str | None = None
) -> list[Path]:
    """Compiles `source` (a file here) to objects in `out_dir`, one per codegen unit."""
    out_dir.mkdir(parents=True, exist_ok=True)
    crate = name or Path(source).stem
    subprocess.run(
        ["rustc", f"--crate-type={crate_type}", f"--crate-name={crate}", "--edition=2021", "--emit=obj"]
        + ["-C", "debuginfo=2", "--out-dir", str(out_dir), *args, str(HERE / source)],
        check=True,
        capture_output=True,
    )
    return sorted(out_dir.glob("*.o"))


def assemble(out: Path, text: str) -> ObjectFile:
    """Assembles x86-64 assembly `text` with `cc -c` and reads the object."""
    src = out.with_suffix(".s")
    src.write_text(text)
    subprocess.run(["cc", "-c", str(src), "-o", str(out)], check=True, capture_output=True)
    return read_object(out)


def fake_executable(
    symbols: dict[str, tuple[int, int]] | None = None,
    tls: dict[str, int] | None = None,
    tls_size: int = 0,
    tls_align: int = 1,
    sizes: dict[str, int] | None = None,
    path: Path = Path("/nonexistent"),
    code_segments: list[tuple[int, int, int]] | None = None,
) -> Executable:
    """An executable holding `symbols` (name -> (link-time address, STT_FUNC or STT_OBJECT))
    and the thread-locals `tls` (name -> offset in its TLS block)."""
    by_name: dict[str, list[Symbol]] = {}
    functions_at: dict[int, set[str]] = {}
    for name, (addr, kind) in (symbols or {}).items():
        size = (sizes or {}).get(name, 16)
        by_name.setdefault(name, []).append(Symbol(name, addr, size, kind, STB_GLOBAL, 1))
        if kind == STT_FUNC:
            functions_at.setdefault(addr, set()).add(name)
    for name, off in (tls or {}).items():
        by_name.setdefault(name, []).append(Symbol(name, off, 8, STT_TLS, STB_GLOBAL, 2))
    return Executable(path, by_name, tls_size, tls_align, code_segments or [], functions_at)


def defining(objects: list[ObjectFile], needle: str) -> ObjectFile:
    """The one object defining a function whose name contains `needle`."""
    found = [
        o for o in objects if any(s.defined and s.type == STT_FUNC and needle in s.name for s in o.symbols)
    ]
    assert len(found) == 1, f"{needle} is defined in {len(found)} objects"
    return found[0]


def symbol(obj: ObjectFile, needle: str, kind: int | None = None) -> Symbol:
    """The one defined symbol of `obj` whose name contains `needle` (of type `kind`)."""
    found = [s for s in obj.symbols if s.defined and needle in s.name and (kind is None or s.type == kind)]
    assert len(found) == 1, f"{needle}: {[s.name for s in found]}"
    return found[0]
