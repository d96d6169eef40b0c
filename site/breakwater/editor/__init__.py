"""The editor side: a web UI under /editor and the same operations as JSON under /api/editor."""
