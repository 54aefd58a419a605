import sys

from training.default_model.pipeline import main

sys.exit(main())
