"""The whole suite's rules, loaded before tests/conftest.py: no skipped tests (tests/no_skips.py)."""
pytest_plugins = ["tests.no_skips"]
