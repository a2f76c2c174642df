"""Rendering: markdown reports and shell scripts. All escaping happens in this package."""
