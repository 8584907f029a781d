"""``mmequi::<path>`` config bases, like ``mmseg::`` / ``mmdet::``.

mmengine resolves ``package::path`` in ``<installed package>/.mim/configs`` (where ``pip install .`` puts mmequi's
configs), but only for the packages of its own table ``MODULE2PACKAGE``. Adding mmequi there on import lets every
config parsed after ``import mmequi`` (``mmequi-test`` imports it first) use ``mmequi::`` bases.
"""
from mmengine.config import utils as config_utils


def register_config_package():
    config_utils.MODULE2PACKAGE.setdefault('mmequi', 'mmequi')
