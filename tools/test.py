"""Evaluate an mmseg or mmdet model, clean, attacked and/or defended: ``mmequi-test`` run from a checkout (mmequi
installed: `make install`).

    python tools/test.py CONFIG [CHECKPOINT] [--attack NAME|none] [--defense NAME|none] ...  (see --help)
"""
from mmequi.apis.test import main, parse_args  # noqa: F401

if __name__ == '__main__':
    main()
