from secml.cli import main

raise SystemExit(main())
