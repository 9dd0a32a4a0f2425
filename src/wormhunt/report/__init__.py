"""Outputs: the JSON summary and the console view (HTML reports come later)."""
