"""The pages: one short script each, declared in ``app.py`` (a package only so import contracts can see them)."""
