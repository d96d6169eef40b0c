"""Accounts: visitors and editors, registration, login and logout (HTML and JSON)."""
