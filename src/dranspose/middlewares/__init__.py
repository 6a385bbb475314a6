"""Compat middlewares package (see COMPAT.md §1)."""
