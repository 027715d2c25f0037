"""App: the running app: its channel, record, output, the engine lock, re-attach, the injected runtime, and the stop that writes jumps."""
