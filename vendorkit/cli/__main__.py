"""``python -m vendorkit.cli``: the same as the ``vendorkit`` command."""

from vendorkit.cli import main

raise SystemExit(main())
