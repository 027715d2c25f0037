"""`hotline`: the engine for a terminal user.

`hotline run [DIR] [--bin NAME] [--release | --profile NAME] [--features F] [--json] [-- APP ARGS]`
builds the app, launches it, watches its sources and patches the running process on every
save; in a terminal, keys restart (r), show the last patch (p) and quit (q), as `flutter
run` does. `hotline lsp` starts the language server on stdio.
"""
