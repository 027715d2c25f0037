"""Which old entries `entry_jumps.entry_obstacle` lets a 5-byte jump overwrite (x86-64 code)."""

from __future__ import annotations

from hotline.engine.analyse.entry_jumps import entry_obstacle

BASE = 0x401000
RET = b"\xc3"


def test_a_plain_function_can_take_a_jump():
    assert entry_obstacle(b"\xb8\x01\x00\x00\x00" + RET, BASE) is None  # mov eax, 1; ret


def test_a_function_shorter_than_the_jump_is_refused():
    assert "too short" in entry_obstacle(b"\x31\xc0" + RET, BASE)  # xor eax, eax; ret


def test_a_loop_head_at_byte_2_is_refused():
    # xor eax,eax; 2: inc rax; cmp rax,rdi; jb 2b; ret
    code = b"\x31\xc0" + b"\x48\xff\xc0" + b"\x48\x39\xf8" + b"\x72\xf8" + RET
    assert entry_obstacle(code, BASE) == "a branch at byte 8 targets byte 2 of its entry"


def test_a_branch_back_to_byte_0_is_refused():
    # 0: dec edi; jnz 0b; then padding to be long enough
    code = b"\xff\xcf" + b"\x75\xfc" + b"\x90" * 4 + RET
    assert entry_obstacle(code, BASE) == "a branch at byte 2 targets byte 0 of its entry"


def test_a_recursive_call_to_the_entry_is_allowed():
    code = b"\x48\x85\xff" + b"\x74\x06" + b"\xe8" + (-10).to_bytes(4, "little", signed=True) + RET
    # test rdi,rdi; je +6; call BASE; ret
    assert entry_obstacle(code, BASE) is None


def test_a_call_returning_inside_the_window_is_refused():
    code = b"\xff\xd0" + b"\x90" * 6 + RET  # call rax; nops; ret
    assert entry_obstacle(code, BASE) == "a call returns to byte 2 of its entry"


def test_a_repeated_string_instruction_in_the_window_is_refused():
    code = b"\xf3\xa4" + b"\x90" * 6 + RET  # rep movsb; nops; ret
    assert entry_obstacle(code, BASE) == "its entry holds a repeated string instruction"


def test_undecodable_bytes_are_refused():
    assert "cannot be disassembled" in entry_obstacle(b"\x90" * 5 + b"\x06" + RET, BASE)
