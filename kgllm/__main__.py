import sys

from kgllm.cli import main

sys.exit(main())
