"""Text corpora for the char-LM benchmark: built-in sources (cached), user files, splits and batches.

Numpy only: building datasets never needs torch; convert windows with ``torch.from_numpy`` at the model.
"""

from overparam_empirical.data.batches import (
    StreamBatch,
    epoch_batches,
    eval_batches,
    stream_batches,
    windows_per_epoch,
)
from overparam_empirical.data.cache import cache_dir
from overparam_empirical.data.char_dataset import UNK, CharDataset
from overparam_empirical.data.errors import DataUnavailableError
from overparam_empirical.data.loading import BUILTIN_SOURCES, DEFAULT_SOURCE, load_text
from overparam_empirical.data.text_source import TextSource

__all__ = [
    "BUILTIN_SOURCES",
    "DEFAULT_SOURCE",
    "UNK",
    "CharDataset",
    "DataUnavailableError",
    "StreamBatch",
    "TextSource",
    "cache_dir",
    "epoch_batches",
    "eval_batches",
    "load_text",
    "stream_batches",
    "windows_per_epoch",
]
