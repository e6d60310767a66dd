"""Slash commands: each module parses its command's words and calls one store operation."""
