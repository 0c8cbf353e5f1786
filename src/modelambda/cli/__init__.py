"""The ``modelambda`` command line: thin commands that call the library.

Each command module imports what it needs inside its function, so ``modelambda --help``
stays instant.
"""
