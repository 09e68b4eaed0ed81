"""``python -m adapters.uin.client``: the terminal UIN client."""

from adapters.uin.client.cli import main

raise SystemExit(main())
