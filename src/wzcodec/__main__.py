from wzcodec.cli import main

raise SystemExit(main())
