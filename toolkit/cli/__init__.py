"""The ``toolkit`` command line (click). Commands live in one module each and load lazily."""
