"""Only the engine that launched an app can patch it, and bad input never crashes it (issue 8)."""

from __future__ import annotations

import json
import os
import random
import socket

import pytest
from conftest import fields
from elftools.elf.constants import P_FLAGS
from elftools.elf.elffile import ELFFile
from hotline.engine import schemas
from hotline.engine.app.channel import ChannelError, PatchChannel


def _running(app):
    assert app.session.running is not None
    return app.session.running


def _patch(app, **overrides) -> dict:
    running = _running(app)
    message = {
        "seq": 1000,
        "image": "/nonexistent",
        "segments": [],
        "imports": [],
        "eh_frame": None,
        "table": [],
        "entry_jumps": [],
    }
    message |= overrides
    # A message that parses moves the app's replay guard; keep the engine's counter past it.
    running.seq = max(running.seq, message["seq"])
    return running.channel.send_patch(message)


def _still_patchable(app) -> None:
    app.edit("fn version() -> u32 {\n    1\n}", "fn version() -> u32 {\n    8\n}")
    mark = app.mark()
    app.patch()
    app.wait_line(lambda s: s.startswith("v=8"), after=mark)


@pytest.fixture
def probe(live_app):
    app = live_app("probe")
    app.wait_line(lambda s: s.startswith("v=1"))
    return app


def test_foreign_token_build_and_replayed_messages_are_refused(probe):
    assert "wrong token" in _patch(probe, token="f" * 32, seq=1)["reason"]
    assert "is for build" in _patch(probe, build_id="someone-else", seq=1)["reason"]
    _running(probe).seq = 0
    _still_patchable(probe)  # seq 1 applied
    assert "already seen" in _patch(probe, seq=1)["reason"]  # a replay of the applied patch
    before = fields(probe.lines[-1])
    mark = probe.mark()
    after = fields(probe.wait_line(lambda s: True, after=mark))
    assert after["v"] == "8" and int(after["hits"]) > int(before["hits"])


def test_patches_pointing_outside_their_region_or_at_missing_files_are_refused(probe, tmp_path):
    region = _running(probe)
    image = tmp_path / "image.bin"
    image.write_bytes(b"\xc3" * 4096)
    seg = {"addr": region.region_next, "offset": 0, "filesz": 4096, "memsz": 4096, "prot": "rx"}
    assert "cannot read patch image" in _patch(probe, seq=10)["reason"]
    outside = seg | {"addr": 4096}
    assert "outside the patch region" in _patch(probe, seq=11, image=str(image), segments=[outside])["reason"]
    table = [[1, 0x1234]]
    reason = _patch(probe, seq=12, image=str(image), segments=[seg], table=table)["reason"]
    assert "points outside the patch's code" in reason
    not_library = tmp_path / "notes.txt"
    not_library.write_text("hello")
    past_end = seg | {"filesz": 8192, "memsz": 8192}
    assert "past the end" in _patch(probe, seq=13, image=str(not_library), segments=[past_end])["reason"]
    imports = [{"slot": region.region_next + 4096 * 3, "name": "printf"}]
    assert (
        "not in a writable segment"
        in _patch(probe, seq=14, image=str(image), segments=[seg], imports=imports)["reason"]
    )
    _still_patchable(probe)


def test_malformed_and_random_messages_are_refused_and_the_app_runs_on(probe):
    channel = _running(probe).channel
    rng = random.Random(1234)
    valid = json.dumps(
        {
            "type": "patch",
            "token": channel.token,
            "build_id": channel.build_id,
            "seq": 99,
            "image": "/x",
            "segments": [],
            "imports": [],
            "eh_frame": None,
            "table": [],
            "entry_jumps": [],
        }
    ).encode()
    cases = [
        b"{",
        b"not json",
        b"\xff\xfe\xfd",
        b"[]",
        b"null",
        b'{"type": "patch"}',
        valid.replace(b'"seq": 99', b'"seq": "99"'),
        valid.replace(b'"table": []', b'"table": [[1]]'),
        valid.replace(b'"segments": []', b'"segments": [{"addr": -1}]'),
        valid.replace(b'"entry_jumps": []', b'"entry_jumps": [[1]]'),
        valid.replace(b', "entry_jumps": []', b""),
    ]
    for _ in range(300):
        mutated = bytearray(valid)
        for _ in range(rng.randint(1, 6)):
            mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        cases.append(bytes(mutated).replace(b"\n", b" "))
        cases.append(bytes(rng.randrange(256) for _ in range(rng.randint(1, 80))).replace(b"\n", b" "))
    for case in cases:
        result = channel.exchange(case + b"\n")
        assert not schemas.problems("channel-result", result)
        assert result["status"] == "refused", case
    # A mutation that still parses (a changed image path, say) moves the app's replay guard.
    _running(probe).seq = max(_running(probe).seq, 99)
    mark = probe.mark()
    probe.wait_line(lambda s: s.startswith("v=1"), after=mark)
    _still_patchable(probe)


def _program_code(running) -> tuple[int, int]:
    """The running executable's code: its executable PT_LOAD segment, at runtime addresses."""
    with open(f"/proc/{running.proc.pid}/exe", "rb") as exe:
        for seg in ELFFile(exe).iter_segments():
            if seg["p_type"] == "PT_LOAD" and seg["p_flags"] & P_FLAGS.PF_X:
                start = running.slide + seg["p_vaddr"]
                return start, start + seg["p_memsz"]
    raise AssertionError("the app has no executable segment")


U64 = 2**64 - 1
MISSING = "hotline_no_such_symbol is not in any loaded library"


def test_structural_fuzz_of_a_valid_patch_is_refused_and_the_app_runs_on(probe, tmp_path):
    """Every field of a patch that passes validation, set to boundary values: always a reason."""
    running = _running(probe)
    start, end = running.region_next, running.region_end
    text, text_end = _program_code(running)
    image = tmp_path / "image.bin"
    image.write_bytes(b"\xc3" * 4096 + b"\0" * 100)
    # Shaped like the engine's patches: it passes every check of the runtime, and is then
    # refused only because its one import names no symbol, so no byte is ever written.
    base = {
        "image": str(image),
        "segments": [
            {"addr": start, "offset": 0, "filesz": 4096, "memsz": 4096, "prot": "rx"},
            {"addr": start + 4096, "offset": 4096, "filesz": 100, "memsz": 4096, "prot": "r"},
            {"addr": start + 8192, "offset": 4196, "filesz": 0, "memsz": 4096, "prot": "rw"},
        ],
        "imports": [{"slot": start + 8192, "name": "hotline_no_such_symbol"}],
        "eh_frame": start + 4096,
        "table": [[text + 16, start]],
        "entry_jumps": [[text + 16, start + 32]],
    }
    seq = iter(range(2000, 10**6))

    def send(message: dict) -> str:
        result = _patch(probe, seq=next(seq), **message)  # the channel checks the schema
        assert result["status"] == "refused" and result["reason"], (message, result)
        return result["reason"]

    assert MISSING in send(base)
    paths = [("segments", i, k) for i in range(3) for k in ("addr", "offset", "filesz", "memsz")]
    paths += [("imports", 0, "slot"), ("eh_frame",), ("table", 0, 0), ("table", 0, 1)]
    paths += [("entry_jumps", 0, 0), ("entry_jumps", 0, 1)]
    boundaries = [0, 1, 4, 4095, 4096, 4097, 2**31 - 1, 2**32, 2**63, U64, U64 - 4, U64 - 7, U64 - 4095]
    boundaries += [start - 1, start + 1, start + 4092, end - 4096, end - 8, end - 5, end - 1, end]
    boundaries += [end + 4096, text - 1, text, text_end - 5, text_end - 4, text_end]

    def mutate(message: dict, path: tuple, value) -> dict:
        message = json.loads(json.dumps(message))
        if len(path) == 1:
            message[path[0]] = value
        else:
            message[path[0]][path[1]][path[2]] = value
        return message

    by_validation = 0
    for path in paths:
        for value in boundaries:
            by_validation += MISSING not in send(mutate(base, path, value))
    for value in (-1, 2**64, 1.5, "1", None, [], {}):
        assert "must be" in send(mutate(base, ("entry_jumps", 0, 0), value))
    rng = random.Random(99)
    for _ in range(150):
        message = base
        for _ in range(rng.randint(2, 4)):
            message = mutate(message, rng.choice(paths), rng.choice(boundaries))
        send(message)
    rx, r, rw = base["segments"]
    hand_picked = {
        "outside the patch region": {"segments": [rx | {"addr": end - 4096, "memsz": 8192}, r, rw]},
        "not page-aligned": {"segments": [rx, r | {"addr": start + 4097}, rw]},
        "more file bytes": {"segments": [rx, r | {"filesz": 4097}, rw]},
        "segments overlap": {"segments": [rx, rx | {"prot": "r"}, rw]},
        "past the end of the image file": {"segments": [rx, r | {"offset": U64}, rw]},
        "not in a writable segment": {"imports": [{"slot": U64 - 7, "name": "puts"}]},
        "points outside the patch's code": {"table": [[text + 16, U64]]},
        "unwind table": {"eh_frame": end},
        "is not in the program's code": {"entry_jumps": [[U64, start]]},
        "entry jump sites": {"entry_jumps": [[text + 16, start], [text + 20, start]]},
    }
    for why, change in hand_picked.items():
        assert why in send(base | change)
    assert by_validation > len(paths) * len(boundaries) // 2
    # Alive, still printing, and the next real patch applies.
    mark = probe.mark()
    probe.wait_line(lambda s: s.startswith("v=1"), after=mark)
    _still_patchable(probe)


def _hello(channel: PatchChannel, **wrong) -> dict:
    """A schema-valid hello as the app launched on `channel` sends it, with `wrong` fields."""
    hello = {
        "type": "hello",
        "protocol": 1,
        "pid": os.getpid(),
        "build_id": channel.build_id,
        "token": channel.token,
        "mode": "injected",
        "exe_base": 0,
        "region": {"start": 4096, "size": 4096},
        "last_seq": 0,
    } | wrong
    assert not schemas.problems("channel-hello", hello), "a stranger's hello must pass the schema"
    return hello


def _say_hello(channel: PatchChannel, hello: dict) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX)
    sock.connect(str(channel.path))
    sock.sendall(json.dumps(hello).encode() + b"\n")
    return sock


@pytest.mark.parametrize(
    "wrong",
    [{"token": "0" * 32}, {"build_id": "build-2"}, {"pid": 1}],
    ids=["token", "build_id", "pid"],
)
def test_the_socket_is_private_and_a_stranger_cannot_pass_for_the_app(wrong):
    """A well-formed hello with exactly one field not the launched app's (its token, build id
    or pid) is ignored and its connection closed; the app's own hello is then accepted."""
    channel = PatchChannel("build-1")
    try:
        assert oct(os.stat(channel.path).st_mode & 0o777) == "0o600"
        assert oct(os.stat(channel.path.parent).st_mode & 0o777) == "0o700"
        stranger = _say_hello(channel, _hello(channel, **wrong))
        with pytest.raises(Exception, match="did not connect"):
            channel.accept(os.getpid(), timeout=1.0)
        stranger.settimeout(5)
        assert stranger.recv(1) == b"", "the stranger's connection was not closed"
        stranger.close()
        app = _say_hello(channel, _hello(channel, region={"start": 8192, "size": 4096}))
        assert channel.accept(os.getpid(), timeout=5.0).region_start == 8192
        app.close()
    finally:
        channel.close()


@pytest.mark.parametrize("mode", [0o755, 0o711, 0o770])
def test_a_new_engine_refuses_to_listen_in_a_socket_folder_that_is_not_private(tmp_path, mode):
    """Re-attaching reopens the recorded socket path (handover.py): a folder at that path that
    is not this user's 0700 folder (someone made it in /tmp, say) never receives the socket."""
    folder = tmp_path / "hotline-taken"
    folder.mkdir()
    os.chmod(folder, mode)
    with pytest.raises(ChannelError, match="not a private directory of this user"):
        PatchChannel("build-1", reopen=(folder / "patch.sock", "0" * 32))
    assert not (folder / "patch.sock").exists()
    os.chmod(folder, 0o700)
    PatchChannel("build-1", reopen=(folder / "patch.sock", "0" * 32)).close()


def test_a_socket_folder_that_is_a_symlink_is_refused(tmp_path):
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    link = tmp_path / "hotline-link"
    link.symlink_to(private)
    with pytest.raises(ChannelError, match="not a private directory"):
        PatchChannel("build-1", reopen=(link / "patch.sock", "0" * 32))
