"""Modals, built with slack_sdk.models."""
