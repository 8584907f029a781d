"""Evaluate an mmseg or mmdet model, clean, attacked and/or defended: ``mmequi-test`` run from a checkout.

    python tools/test.py CONFIG [CHECKPOINT] [--attack NAME|none] [--defense NAME|none] ...  (see --help)
"""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))  # run from a checkout without install

from mmequi.apis.test import main, parse_args  # noqa: E402,F401

if __name__ == '__main__':
    main()
