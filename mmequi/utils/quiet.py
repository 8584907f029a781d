"""The library warnings that say nothing to an mmequi user, silenced by exact message (never errors, never anything
else): they were printed on every run and drowned the lines about the run itself."""
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
