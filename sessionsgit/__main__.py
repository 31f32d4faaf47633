"""``python -m sessionsgit``: the same command line as the ``sessionsgit`` script."""

from .cli import main

if __name__ == "__main__":
    main()
