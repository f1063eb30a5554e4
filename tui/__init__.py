"""The terminal interface and the ``liudong`` command line."""
