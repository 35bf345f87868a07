"""Third-party plugins written for the tests of the guest boundary (test_plugin_guests.py)."""
