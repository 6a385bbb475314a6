"""Compat data package (see COMPAT.md §1)."""
