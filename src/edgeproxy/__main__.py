from edgeproxy.node.main import main

raise SystemExit(main())
