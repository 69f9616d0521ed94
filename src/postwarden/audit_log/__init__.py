"""The audit log read back: pages, export, chain verification and pruning (``audit.py`` writes it)."""
