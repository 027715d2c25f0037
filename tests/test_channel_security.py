"""Only the engine that launched an app can patch it, and bad input never crashes it (issue 8)."""

from __future__ import annotations

import json
import os
import random
import socket

import pytest
from conftest import fields
from hotline.engine import schemas
from hotline.engine.channel import PatchChannel


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
    mark = probe.mark()
    probe.wait_line(lambda s: s.startswith("v=1"), after=mark)
    _still_patchable(probe)


def test_the_socket_is_private_and_a_stranger_cannot_pass_for_the_app(tmp_path):
    channel = PatchChannel("build-1")
    try:
        assert oct(os.stat(channel.path).st_mode & 0o777) == "0o600"
        assert oct(os.stat(channel.path.parent).st_mode & 0o777) == "0o700"
        stranger = socket.socket(socket.AF_UNIX)
        stranger.connect(str(channel.path))
        hello = {
            "type": "hello",
            "protocol": 1,
            "pid": os.getpid(),
            "build_id": "build-1",
            "token": "0" * 32,
            "anchor": 4096,
            "region": {"start": 4096, "size": 4096},
        }
        stranger.sendall(json.dumps(hello).encode() + b"\n")
        with pytest.raises(Exception, match="did not connect"):
            channel.accept(os.getpid(), timeout=1.0)  # a wrong token is not the app we launched
        stranger.close()
    finally:
        channel.close()
