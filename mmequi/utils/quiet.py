"""The library warnings that say nothing to an mmequi user, silenced by exact message (never errors, never anything
else): they were printed on every run and drowned the lines about the run itself."""
import logging
import warnings

# (start of the message, category, why it is noise here)
KNOWN_NOISE = (
    ('pkg_resources is deprecated as an API', UserWarning),  # setuptools < 81 is pinned on purpose (mmcv needs it)
    ('``build_loss`` would be deprecated soon', UserWarning),  # mmseg's own heads call it
    ('Default ``avg_non_ignore`` is False', UserWarning),  # a training-loss default; mmequi only tests
    ('The draw is False, it means that the hook for visualization', UserWarning),  # mmseg's default config
    ('instance named of visualizer has been created', UserWarning),  # several runs in one process (reports)
)


def silence_library_noise():
    for message, category in KNOWN_NOISE:
        warnings.filterwarnings('ignore', message=message, category=category)


# mmengine's log lines that are noise here, by the start of their message: mmseg's IoUMetric has no prefix by design
# (its keys are mIoU/aAcc), and mmengine logs that at WARNING level every time the metric is built.
KNOWN_LOG_NOISE = ('The prefix is not set in metric class IoUMetric',)


class _DropKnownNoise(logging.Filter):
    def filter(self, record):
        return not str(record.msg).startswith(KNOWN_LOG_NOISE)


def quiet_logger(logger: logging.Logger) -> logging.Logger:
    """Drop :data:`KNOWN_LOG_NOISE` from ``logger`` (the runner's logger, before it builds the evaluator)."""
    if not any(isinstance(f, _DropKnownNoise) for f in logger.filters):
        logger.addFilter(_DropKnownNoise())
    return logger
