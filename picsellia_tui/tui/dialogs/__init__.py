"""Modal screens: launch, confirm, help."""
