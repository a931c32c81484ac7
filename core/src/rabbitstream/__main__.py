"""``python -m rabbitstream``: see :mod:`rabbitstream._cli`."""

from rabbitstream._cli import main

raise SystemExit(main())
