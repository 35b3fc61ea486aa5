"""``python -m rdanet_gan.cli``: the same command line as ``rdanet-gan``."""

from rdanet_gan.cli import main

raise SystemExit(main())
