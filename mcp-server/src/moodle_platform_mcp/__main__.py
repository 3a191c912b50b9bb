from moodle_platform_mcp.cli import main

raise SystemExit(main())
