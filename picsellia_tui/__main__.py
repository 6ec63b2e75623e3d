"""`python -m picsellia_tui`: the same as the `picsellia-tui` command."""

from picsellia_tui.entry import main

main()
