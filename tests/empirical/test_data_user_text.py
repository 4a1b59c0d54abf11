"""User corpora: text files, enwik8, text8, 1B-Words folders, folders of .txt files, and their errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from overparam_empirical.data import load_text
from overparam_theory.errors import InputError

FIXTURES = Path(__file__).resolve().parents[1] / "data"


def test_plain_text_file_round_trips():
    path = FIXTURES / "shakespeare_hamlet_excerpt.txt"
    source = load_text(path)
    assert source.text == path.read_text(encoding="utf-8")
    assert source.name == path.name and source.heldout is None and source.credit == ""


def test_bom_is_dropped_and_crlf_normalised(tmp_path):
    path = tmp_path / "c.txt"
    path.write_bytes("\ufeffline one\r\nline twö\r\n".encode())
    assert load_text(path).text == "line one\nline twö\n"


def test_binary_file_is_refused(tmp_path):
    path = tmp_path / "model.bin"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    with pytest.raises(InputError, match="binary"):
        load_text(path)


def test_undecodable_file_names_the_offset(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes(b"abc caf" + b"\xe9 au lait")
    with pytest.raises(InputError, match=r"not UTF-8 text \(invalid byte 0xe9 at offset 7\)"):
        load_text(path)


def test_empty_and_missing_files(tmp_path):
    (tmp_path / "empty.txt").write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        load_text(tmp_path / "empty.txt")
    with pytest.raises(InputError, match="neither a built-in source"):
        load_text(tmp_path / "absent.txt")
    with pytest.raises(InputError, match="empty string"):
        load_text("  ")


def test_enwik8_is_read_byte_per_character(tmp_path):
    data = bytes(range(256)) + "<page>é</page>".encode()
    (tmp_path / "enwik8").write_bytes(data)
    text = load_text(tmp_path / "enwik8").text
    assert len(text) == len(data) and [ord(c) for c in text] == list(data)  # é = 2 symbols (UTF-8 bytes)


def test_forced_format_reads_any_name_as_bytes(tmp_path):
    (tmp_path / "dump.xml").write_bytes(b"a\x00\xff")
    assert load_text(tmp_path / "dump.xml", fmt="enwik8").text == "a\x00\xff"
    with pytest.raises(InputError, match="unknown corpus format"):
        load_text(tmp_path / "dump.xml", fmt="pdf")


def test_text8_single_line(tmp_path):
    (tmp_path / "text8").write_text(" anarchism originated as a term of abuse")
    source = load_text(tmp_path / "text8")
    assert source.text == " anarchism originated as a term of abuse" and "text8" in source.origin


def _one_billion_words(root: Path) -> Path:
    top = root / "1-billion-word-language-modeling-benchmark-r13output"
    train = top / "training-monolingual.tokenized.shuffled"
    heldout = top / "heldout-monolingual.tokenized.shuffled"
    train.mkdir(parents=True)
    heldout.mkdir()
    for shard in (3, 1, 2):
        (train / f"news.en-{shard:05d}-of-00100").write_text(f"train shard {shard} .\n")
    for shard in (0, 2, 1):
        (heldout / f"news.en.heldout-{shard:05d}-of-00050").write_text(f"heldout shard {shard} .\n")
    (train / "README").write_text("not a shard\n")
    return top


def test_one_billion_words_folder(tmp_path):
    top = _one_billion_words(tmp_path)
    source = load_text(top)
    assert source.text == "train shard 1 .\ntrain shard 2 .\ntrain shard 3 .\n"
    assert source.heldout == "heldout shard 1 .\nheldout shard 2 .\n"  # shard 0 is the test set
    assert load_text(top, max_files=2).text == "train shard 1 .\ntrain shard 2 .\n"
    inner = load_text(top / "training-monolingual.tokenized.shuffled")
    assert inner.text == source.text and inner.heldout == source.heldout


def test_folder_of_text_files(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "2.txt").write_text("two")
    (tmp_path / "a.txt").write_text("one\n")
    (tmp_path / "skip.md").write_text("no")
    assert load_text(tmp_path).text == "one\ntwo\n"
    assert load_text(tmp_path, max_files=1).text == "one\n"
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no .txt files"):
        load_text(empty)


def test_max_chars_and_bad_caps():
    path = FIXTURES / "kjv_genesis_1_2.txt"
    assert load_text(path, max_chars=20).text == path.read_text()[:20]
    for bad in (0, -1, 2.5, True):
        with pytest.raises(InputError, match="max_chars"):
            load_text(path, max_chars=bad)
