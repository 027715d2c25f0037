"""Hotline's language server: run, patch-on-save, diagnostics and code lenses over LSP."""
