"""The baseline Textual app: one static line and a footer."""

from textual.app import App, ComposeResult
from textual.widgets import Footer, Static


class Minimal(App[None]):
    BINDINGS = [("ctrl+q", "quit", "Quit")]

    def compose(self) -> ComposeResult:
        yield Static("hello bench")
        yield Footer()


if __name__ == "__main__":
    Minimal().run()
