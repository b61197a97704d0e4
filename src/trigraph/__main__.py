"""``python -m trigraph``: the command line (see ``trigraph._cli``)."""

from ._cli import main

if __name__ == "__main__":
    raise SystemExit(main())
