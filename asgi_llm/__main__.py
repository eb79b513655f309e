from asgi_llm.cli import main

raise SystemExit(main())
