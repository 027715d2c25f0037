"""Analyse: what a rebuilt object changed (object diff, DWARF type layouts and function ABIs), what a patch must carry (patch scope) and which edits are rude."""
