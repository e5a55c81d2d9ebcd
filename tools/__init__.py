"""Developer tools, not part of the installed dmkeras package."""
