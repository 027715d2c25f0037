"""A debug ELF per patch, so debuggers, std's backtrace and profilers see patched code.

The runtime maps a patch as a flat image; nothing in the process describes it. For each
applied patch this module writes an ELF executable (`ET_EXEC`, no program headers) that
says what lies where: the patch's segments as sections at the addresses they were placed
at (`.text` with the rx bytes, `.rodata`, `.eh_frame` for gdb's unwinder, `.data`), a
`.symtab` with every function of the patch (STT_FUNC, address, size), and the DWARF of the
linked units, relocated for those addresses by the patch linker's own symbol resolution
(`link_debug_info.PatchDebugInfo.debug_sections`).

The runtime hands the bytes to gdb and lldb through the GDB JIT interface and names the
file to std's backtrace through `dl_iterate_phdr` (ARCHITECTURE.md, "Debug info").

Why the ELF is written here with `struct` and not with lief: the file has only section
headers, a symbol table and string tables, about 120 lines; lief's builder is made to
rewrite existing binaries and lays sections out itself, while these must sit at the
addresses the patch linker chose, and lief would be a ~20 MB dependency for it.

It all runs after the `patched` event, on a background thread (`DebugInfoWriter`): the
save→patched path only takes a snapshot of the linker's resolution state.
"""

from __future__ import annotations

import queue
import shutil
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hotline.engine.analyse.demangle import demangle
from hotline.engine.app.channel import ChannelError, PatchChannel
from hotline.engine.link.elf_objects import (
    EHDR,
    SHDR,
    SHF_ALLOC,
    SHF_EXECINSTR,
    SHF_WRITE,
    SHT_NOBITS,
    SHT_PROGBITS,
    SHT_SYMTAB,
    STB_LOCAL,
    STT_FUNC,
)
from hotline.engine.link.patch_link import LinkedPatch

#: Patches start on a slot boundary, and the runtime reports one module per slot of its
#: region to `dl_iterate_phdr` (runtime/src/debug.rs): std reads the module list once,
#: at the first backtrace, so every future patch's module must be in it from the start.
SLOT = 64 << 10
#: The load bias the runtime reports for the slots: std takes a module with bias 0 for
#: the executable itself. Any non-zero value below the region works; the files std reads
#: have it subtracted from their addresses.
STD_BIAS = SLOT

ET_EXEC = 2
EM_X86_64 = 62
SHT_STRTAB = 3
STB_GLOBAL = 1
_SYM = struct.Struct("<IBBHQQ")


def slot_name(address: int) -> str:
    """The file name the runtime gives `dl_iterate_phdr` for the slot at `address`."""
    return f"{address:x}.debug"


@dataclass
class _Section:
    name: str
    type: int
    flags: int
    addr: int
    data: bytes
    size: int = -1  # NOBITS: memory size; else len(data)
    link: int = 0
    info: int = 0
    align: int = 1
    entsize: int = 0


def build_debug_elf(linked: LinkedPatch, bias: int = 0) -> bytes:
    """The debug ELF of `linked` (its `linker` must still be attached), its addresses less
    `bias`: 0 for debuggers, `STD_BIAS` for std (see `DebugInfoWriter`)."""
    linker = linked.linker
    assert linker is not None
    layout = linker.segment_layout()
    image = linked.image
    rx_addr, rx_size = layout["rx"]
    r_addr, r_size = layout["r"]
    rw_addr, rw_size = layout["rw"]
    eh_addr, _ = layout["eh_frame"]
    rodata = eh_addr - r_addr
    rx_addr, r_addr, rw_addr, eh_addr = (a - bias for a in (rx_addr, r_addr, rw_addr, eh_addr))
    sections = [
        _Section(".text", SHT_PROGBITS, SHF_ALLOC | SHF_EXECINSTR, rx_addr, image[:rx_size], align=16),
        _Section(".rodata", SHT_PROGBITS, SHF_ALLOC, r_addr, image[rx_size : rx_size + rodata], align=8),
        _Section(
            ".eh_frame", SHT_PROGBITS, SHF_ALLOC, eh_addr, image[rx_size + rodata : rx_size + r_size], align=8
        ),
        _Section(".data", SHT_NOBITS, SHF_ALLOC | SHF_WRITE, rw_addr, b"", size=rw_size, align=16),
    ]
    for name, data in sorted(linker.debug_sections(bias).items()):
        sections.append(_Section(name, SHT_PROGBITS, 0, 0, data))
    text_index = 1  # section 0 is the null section
    strtab = bytearray(b"\0")
    symbols = [_SYM.pack(0, 0, 0, 0, 0, 0)]
    functions = sorted(linker.debug_functions(), key=lambda f: not f[3])  # locals first
    first_global = 1 + sum(1 for f in functions if not f[3])
    for name, addr, size, is_global in functions:
        at = len(strtab)
        strtab += name.encode() + b"\0"
        info = ((STB_GLOBAL if is_global else STB_LOCAL) << 4) | STT_FUNC
        symbols.append(_SYM.pack(at, info, 0, text_index, addr - bias, size))
    symtab_index = len(sections) + 1
    sections.append(
        _Section(".symtab", SHT_SYMTAB, 0, 0, b"".join(symbols), link=symtab_index + 1, info=first_global)
    )
    sections[-1].align, sections[-1].entsize = 8, _SYM.size
    sections.append(_Section(".strtab", SHT_STRTAB, 0, 0, bytes(strtab)))
    return _write(sections)


def _write(sections: list[_Section]) -> bytes:
    shstrtab = bytearray(b"\0")
    names = []
    for sec in [*sections, _Section(".shstrtab", SHT_STRTAB, 0, 0, b"")]:
        names.append(len(shstrtab))
        shstrtab += sec.name.encode() + b"\0"
    sections = [*sections, _Section(".shstrtab", SHT_STRTAB, 0, 0, bytes(shstrtab))]
    out = bytearray(EHDR.size)
    offsets = []
    for sec in sections:
        pad = -len(out) % max(sec.align, 1)
        out += b"\0" * pad
        offsets.append(len(out))
        if sec.type != SHT_NOBITS:
            out += sec.data
    out += b"\0" * (-len(out) % 8)
    shoff = len(out)
    out += b"\0" * SHDR.size  # the null section
    for sec, name, offset in zip(sections, names, offsets, strict=True):
        size = sec.size if sec.type == SHT_NOBITS else len(sec.data)
        out += SHDR.pack(
            name, sec.type, sec.flags, sec.addr, offset, size, sec.link, sec.info, sec.align, sec.entsize
        )
    ident = b"\x7fELF\x02\x01\x01" + b"\0" * 9
    header = EHDR.pack(
        ident, ET_EXEC, EM_X86_64, 1, 0, 0, shoff, 0, EHDR.size, 0, 0, SHDR.size, len(sections) + 1,
        len(sections),
    )  # fmt: skip
    out[: EHDR.size] = header
    return bytes(out)


def perf_map_lines(linked: LinkedPatch) -> list[str]:
    """The patch's functions in the perf JIT map format: `START SIZE name`, hex."""
    return [
        f"{addr:x} {size:x} {demangle(name)}\n"
        for name, addr in linked.functions.items()
        if (size := linked.function_sizes.get(name, 0))
    ]


@dataclass
class DebugJob:
    seq: int
    linked: LinkedPatch
    pid: int


class DebugInfoWriter:
    """Writes each applied patch's debug ELF and perf map lines on a background thread,
    in patch order, then calls `deliver(seq, path)` (which tells the runtime); a failure is
    passed to `failed(seq, message)` (the session makes it an event: the patch itself runs).

    `<root>/<build id>/patch-<seq>.debug` is the ELF for debuggers (real addresses).
    std's backtrace takes a module whose load bias (`dlpi_addr`) is 0 for the executable
    itself, so the runtime reports the slots with bias `STD_BIAS`, and
    `patch-<seq>.rel.debug` is the same ELF with `STD_BIAS` subtracted from its addresses;
    `<slot address>.debug` symlinks to that for each slot the patch covers. Kept while
    the app runs: a process may read them at any time (a backtrace, a debugger attaching).
    """

    @classmethod
    def for_channel(
        cls, channel: PatchChannel, build_id: str, on_event: Callable[[dict], None]
    ) -> DebugInfoWriter:
        """A writer that tells the app through its patch channel, and reports a failure as a
        `debug-info-failed` event (HL1095)."""
        assert channel.debug_dir is not None

        def deliver(seq: int, path: Path) -> None:
            result = channel.send_debug_info(seq, str(path))
            if result["status"] != "registered":
                raise ChannelError(f"the app refused the debug info of patch {seq}: {result.get('reason')}")

        def failed(seq: int, why: str) -> None:
            on_event(
                {
                    "event": "debug-info-failed",
                    "seq": seq,
                    "rule": "HL1095",
                    "message": f"no debug info for patch {seq} ({why}): it runs, but debuggers, "
                    "backtraces and profilers do not see its code",
                }
            )

        return cls(channel.debug_dir.parent, build_id, deliver, failed)

    def __init__(
        self,
        root: Path,
        build_id: str,
        deliver: Callable[[int, Path], None],
        failed: Callable[[int, str], None],
    ) -> None:
        self.dir = root / build_id
        self.deliver, self.failed = deliver, failed
        for old in root.iterdir() if root.is_dir() else ():
            if old.name != build_id:  # an earlier launch's: its app was stopped before this one
                shutil.rmtree(old, ignore_errors=True)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._perf_started: set[int] = set()
        self._jobs: queue.Queue[DebugJob | None] = queue.Queue()
        self._idle = threading.Event()
        self._idle.set()
        self.errors: list[str] = []
        self._thread = threading.Thread(target=self._run, name="hotline-debug-info", daemon=True)
        self._thread.start()

    def submit(self, seq: int, linked: LinkedPatch, pid: int) -> None:
        """Queues an applied patch; the cheap part (a snapshot of the resolution state the
        next patch changes) runs here, the rest on the thread."""
        assert linked.linker is not None
        linked.linker.freeze_prior()
        self._idle.clear()
        self._jobs.put(DebugJob(seq, linked, pid))

    def wait_idle(self, timeout: float) -> bool:
        """True once every submitted patch has been written and delivered."""
        return self._idle.wait(timeout)

    def close(self) -> None:
        self._jobs.put(None)

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            try:
                self._write(job)
            except Exception as e:  # the patch itself is applied: say what its debug info lacks
                self.errors.append(f"patch {job.seq}: {type(e).__name__}: {e}")
                self.failed(job.seq, f"{type(e).__name__}: {e}")
            finally:
                job.linked.linker = None  # the objects it holds can be freed now
                if self._jobs.empty():
                    self._idle.set()

    def _write(self, job: DebugJob) -> None:
        linked = job.linked
        path = self.dir / f"patch-{job.seq}.debug"
        temp = path.with_suffix(".partial")
        temp.write_bytes(build_debug_elf(linked))
        temp.replace(path)
        relative = self.dir / f"patch-{job.seq}.rel.debug"
        temp.write_bytes(build_debug_elf(linked, STD_BIAS))
        temp.replace(relative)
        base = min(s["addr"] for s in linked.segments)
        for slot in range(base - base % SLOT, base + linked.size, SLOT):
            link = self.dir / slot_name(slot)
            link.unlink(missing_ok=True)
            link.symlink_to(relative.name)
        self._append_perf_map(job)
        self.deliver(job.seq, path)

    def _append_perf_map(self, job: DebugJob) -> None:
        """`/tmp/perf-<pid>.map`, perf's map for JIT code: this launch's first patch starts it
        afresh (a process that had this pid before may have left one)."""
        mode = "a" if job.pid in self._perf_started else "w"
        self._perf_started.add(job.pid)
        with open(f"/tmp/perf-{job.pid}.map", mode) as f:
            f.writelines(perf_map_lines(job.linked))
