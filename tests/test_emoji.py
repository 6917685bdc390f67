"""The emoji dataset (issue 21, part 1): built from Debian's fonts-noto-color-emoji and
unicode-data, labelled by group, a fixed held-out split, one sentence when a file is missing."""
import numpy as np
import pytest

from vaegan import emoji
from vaegan.data import load_dataset

pytestmark = pytest.mark.skipif(not (emoji.FONT.is_file() and emoji.LIST.is_file()),
                                reason=f"needs {emoji.APT}")


def test_the_list_has_every_fully_qualified_emoji_with_its_group_and_skin_tone():
    es = emoji.emoji_list()
    assert len(es) > 3000 and len({e.text for e in es}) == len(es)
    assert emoji.groups(es)[:2] == ("Smileys & Emotion", "People & Body") and "Component" not in emoji.groups(es)
    by_text = {e.text: e for e in es}
    grin = by_text["\U0001F600"]
    assert (grin.name, grin.group, grin.subgroup, grin.tone) == ("grinning face", "Smileys & Emotion", "face-smiling", 0)
    thumbs = by_text["\U0001F44D\U0001F3FD"]
    assert thumbs.tone == 3 and thumbs.base == "\U0001F44D" and thumbs.base in by_text
    # most toned emoji have their untoned one in the set (the skin-tone basis pairs them; the
    # rest are mixed-tone pairs of people whose untoned form is spelt with FE0F)
    toned = [e for e in es if e.tone]
    assert len(toned) > 1000 and sum(e.base in by_text for e in toned) / len(toned) > 0.85


def test_the_held_out_split_is_fixed_and_about_a_tenth():
    es = emoji.emoji_list()
    test = [e for e in es if e.held_out]
    assert 0.08 < len(test) / len(es) < 0.12
    # it depends on the emoji alone: the same answer in any order, from a fresh object
    again = {e.text for e in reversed(emoji.emoji_list()) if e.held_out}
    assert again == {e.text for e in test}


def test_an_emoji_is_rendered_centred_in_colour_on_white():
    from PIL import ImageFont
    font = ImageFont.truetype(str(emoji.FONT), emoji.NATIVE_PX)
    im = emoji.render("\U0001F34E", 64, font)  # red apple
    assert im.shape == (64, 64, 3) and im.dtype == np.uint8
    corners = im[[0, 0, -1, -1], [0, -1, 0, -1]]
    assert (corners >= 250).all()  # white ground
    r, g, b = (im[16:48, 16:48, c].astype(int).mean() for c in range(3))
    assert r > g + 40 and r > b + 40  # red, so colour came through
    with pytest.raises(ValueError, match="renders as nothing"):
        emoji.render(" ", 64, font)


def test_the_dataset_loads_as_labelled_rgb_splits(tmp_path, monkeypatch):
    monkeypatch.setattr(emoji, "CACHE", tmp_path)
    x, y = load_dataset("emoji", "train", None, 32, 3)
    t, ty = load_dataset("emoji", "test", None, 32, 3)
    assert x.shape[1:] == (3, 32, 32) and t.shape[1:] == (3, 32, 32) and x.dtype.is_floating_point is False
    assert len(x) + len(t) == len(emoji.emoji_list()) and len(y) == len(x) and len(ty) == len(t)
    assert set(y.tolist()) == set(range(len(emoji.groups(emoji.emoji_list()))))
    assert list(tmp_path.glob("emoji-32-*.npz"))  # cached: the next load reads it
    x2, _ = load_dataset("emoji", "train", None, 32, 3)
    assert np.array_equal(x.numpy(), x2.numpy())


def test_a_missing_font_or_list_names_the_apt_packages(monkeypatch, tmp_path):
    monkeypatch.setattr(emoji, "FONT", tmp_path / "NotoColorEmoji.ttf")
    with pytest.raises(FileNotFoundError, match="apt-get install fonts-noto-color-emoji unicode-data"):
        emoji.render_all(64)
    with pytest.raises(FileNotFoundError, match="unicode-data"):
        emoji.emoji_list(tmp_path / "emoji-test.txt")
