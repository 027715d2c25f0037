"""Build: the fat build that captures rustc and link commands, and the thin rustc replay per save (or ahead of it, speculatively)."""
