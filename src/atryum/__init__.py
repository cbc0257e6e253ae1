"""Atryum: a permissions gateway for AI agents."""
