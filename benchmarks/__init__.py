"""Performance harnesses for fedsync (not shipped; run from the repository root)."""
