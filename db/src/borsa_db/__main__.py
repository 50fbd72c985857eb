"""`python -m borsa_db` is `borsa-migrate`."""

from borsa_db.cli import main

raise SystemExit(main())
