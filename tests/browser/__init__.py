"""Real-browser tests of the dashboard (a package so that its conftest does not shadow tests/conftest.py)."""
