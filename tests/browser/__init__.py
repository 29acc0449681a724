"""Real-browser tests of the dashboard (a package: its conftest must not shadow the top one)."""
