"""``python -m rabbitstream_cli``: the ``rabbitstream`` command."""

from rabbitstream_cli._main import main

raise SystemExit(main())
