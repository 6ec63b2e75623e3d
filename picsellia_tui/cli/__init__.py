"""The command line: an interface of the engine beside the Textual app (`tui/`).
It may import the engine and the storage views, never Textual; `main.main` is its
entry point."""
