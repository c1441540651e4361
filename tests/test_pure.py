"""The pure parts, by example and by property: names, folders, URLs, sizes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from inatdl.naming import is_placeholder, normalise_name, photo_extension, safe_folder_name, sized_url
from inatdl.units import parse_size

# Sizes ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("5GB", 5_000_000_000),
        ("24GB", 24_000_000_000),
        ("500MB", 500_000_000),
        ("1.5GiB", int(1.5 * 1024**3)),
        ("10kB", 10_000),
        ("10KB", 10_000),
        ("3KiB", 3072),
        ("2 MiB", 2 * 1024**2),
        ("7B", 7),
    ],
)
def test_parse_size(text: str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["lots", "", "5XB", "-1GB", "0", "GB", "1.2.3MB", "1234", "10"])
def test_parse_size_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="size|zero"):
        parse_size(text)


@given(st.integers(min_value=1, max_value=10**6), st.sampled_from(["kB", "MB", "GB", "KiB", "MiB", "GiB"]))
def test_parse_size_units(number: int, unit: str) -> None:
    base = {"kB": 1000, "MB": 1000**2, "GB": 1000**3, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3}[unit]
    assert parse_size(f"{number}{unit}") == number * base
    assert parse_size(f"{number}{unit.lower()}") == number * base


# Names ----------------------------------------------------------------------------------


def test_normalise_name() -> None:
    assert normalise_name("  Lythrum \t  SALICARIA ") == "lythrum salicaria"


@given(st.text())
def test_normalise_name_is_idempotent_and_trimmed(name: str) -> None:
    key = normalise_name(name)
    assert normalise_name(key) == key
    assert key == key.strip()
    assert "  " not in key


@pytest.mark.parametrize(
    ("name", "folder"),
    [
        ("Lythrum salicaria", "Lythrum_salicaria"),
        ("Lythrum × scabrum", "Lythrum_×_scabrum"),
        ("../../etc", "etc"),
        ("a/b\\c", "a_b_c"),
        ("..", "7"),
        ("", "7"),
        ("CON", "_CON"),
        ("nul.txt", "_nul.txt"),
        ("x\x00y\x1fz", "x_y_z"),
    ],
)
def test_safe_folder_name(name: str, folder: str) -> None:
    assert safe_folder_name(name, "7") == folder


@given(st.text(max_size=400))
def test_safe_folder_name_stays_inside(tmp_path_factory: pytest.TempPathFactory, name: str) -> None:
    folder = safe_folder_name(name, "fallback")
    assert folder and len(folder.encode()) <= 120
    assert "/" not in folder and "\\" not in folder and "\x00" not in folder
    assert folder not in (".", "..")
    base = tmp_path_factory.getbasetemp() / "safe"
    base.mkdir(exist_ok=True)
    target = base / folder
    assert os.path.commonpath([base, target.resolve()]) == str(base.resolve())
    target.mkdir(exist_ok=True)  # a name every file system here accepts
    assert Path(base, folder).is_dir()


# URLs -----------------------------------------------------------------------------------


def test_sized_url_changes_only_the_size_word() -> None:
    url = "https://static.inaturalist.org/photos/92152429/square.jpg?1598551272"
    assert sized_url(url, "medium") == "https://static.inaturalist.org/photos/92152429/medium.jpg?1598551272"
    open_url = "https://inaturalist-open-data.s3.amazonaws.com/photos/1/square.jpeg"
    assert (
        sized_url(open_url, "original")
        == "https://inaturalist-open-data.s3.amazonaws.com/photos/1/original.jpeg"
    )
    # a size word elsewhere in the URL stays
    tricky = "https://h.example/square/photos/2/square.png?square"
    assert sized_url(tricky, "large") == "https://h.example/square/photos/2/large.png?square"


@pytest.mark.parametrize(
    "url",
    ["https://h/photos/1/banner.jpg", "ftp://h/photos/1/square.jpg", "https://h/photos/1/square", ""],
)
def test_sized_url_refuses_unknown_shapes(url: str) -> None:
    assert sized_url(url, "medium") is None


@given(
    st.integers(min_value=1, max_value=10**10),
    st.sampled_from(["square", "thumb", "small", "medium", "large", "original"]),
    st.sampled_from(["square", "thumb", "small", "medium", "large", "original"]),
    st.sampled_from(["jpg", "jpeg", "png", "JPG"]),
    st.one_of(st.none(), st.integers(min_value=0, max_value=10**12)),
)
def test_sized_url_round_trip(photo_id: int, start: str, size: str, ext: str, stamp: int | None) -> None:
    query = "" if stamp is None else f"?{stamp}"
    url = f"https://static.inaturalist.org/photos/{photo_id}/{start}.{ext}{query}"
    new = sized_url(url, size)
    assert new == f"https://static.inaturalist.org/photos/{photo_id}/{size}.{ext}{query}"
    assert sized_url(new, start) == url


def test_placeholders_and_extensions() -> None:
    assert is_placeholder("https://static.inaturalist.org/assets/copyright-infringement-square.png")
    assert not is_placeholder("https://static.inaturalist.org/photos/1/square.png")
    assert is_placeholder("https://www.inaturalist.org/attachment_defaults/local_photos/square.png")
    assert photo_extension("https://h/photos/1/square.JPEG?1") == "jpeg"
    assert photo_extension("https://h/photos/1/square.exe") is None
    assert photo_extension("https://h/photos/1/square") is None
