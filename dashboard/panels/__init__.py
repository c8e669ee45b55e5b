"""Sections of the service page, one module each, every one a ``render(service, window)`` function."""
