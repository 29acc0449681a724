"""AppTest tests of the dashboard (a package: its conftest must not shadow tests/conftest.py)."""
