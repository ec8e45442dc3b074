"""Heraclius monitor: a Textual TUI that watches a deployment through the nodes' HTTP endpoints."""
