"""Build settings reach the fat build (issue 3 settings: linker choice)."""

from __future__ import annotations

from elftools.elf.elffile import ELFFile
from hotline.engine.session import Session
from hotline.examples import copy_app


def _comment(exe) -> bytes:
    with open(exe, "rb") as f:
        section = ELFFile(f).get_section_by_name(".comment")
        return section.data() if section else b""


def test_linker_setting_relinks_the_app_with_that_linker(tmp_path):
    crate = copy_app("counter", tmp_path)
    default = Session(crate, lambda e: None).fat_build()
    assert b"LLD" in _comment(default)  # rustc links with its bundled lld
    bfd = Session(crate, lambda e: None, linker="bfd").fat_build()
    assert b"LLD" not in _comment(bfd)  # GNU ld leaves no mark in .comment
