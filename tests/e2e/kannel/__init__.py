"""Kannel (Debian ``kannel``: bearerbox and smsbox) as a lab around the live gateway, for the
interop test ``tests/e2e/test_interop_kannel.py`` (issue 8 item 3)."""
