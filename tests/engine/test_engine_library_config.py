"""Exercise library and configuration: loading, user overrides, one-line errors, docs agree."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from spinecoach.config import SCHEMA, load_config, resolve_state_dir
from spinecoach.engine.library import format_tempo, load_library, parse_tempo
from spinecoach.errors import ConfigError, DataFormatError

DESIGN_EXERCISES = {
    "banded_good_morning", "chained_good_morning", "back_extension", "back_extension_hold",
    "dumbbell_row", "bridge", "bridge_lateral_shift", "single_leg_deadlift", "sorensen_hold",
    "isometric_pull", "repeaters", "rotational_throw", "pelvic_tilt", "bird_dog", "loaded_bird_dog",
}
REPO = Path(__file__).resolve().parents[2]


def test_library_covers_every_design_exercise_with_motion_settings() -> None:
    library = load_library()
    assert {e.id for e in library} == DESIGN_EXERCISES
    for exercise in library:
        settings = exercise.motion_settings()
        assert settings.primary_axis is not None and exercise.placement
        assert settings.eccentric_sign in (1, -1) and settings.min_rom_deg > 0
        if exercise.kind == "hold":
            assert exercise.hold_target_deg is not None, exercise.id
        if exercise.uses_force:
            assert exercise.load_cell, exercise.id
    assert library.get("dumbbell_row").eccentric_sign == -1
    # The kernels take the extension limit as a magnitude: angle < -extension_limit_deg.
    good_morning = library.get("banded_good_morning").motion_settings()
    assert (good_morning.extension_limit_deg, good_morning.flexion_limit_deg) == (10.0, 100.0)
    assert library.get("back_extension_hold").motion_settings().extension_limit_deg == -20.0
    assert library.get("rotational_throw").primary_axis == (1.0, 0.0, 0.0)
    assert library.get("back_extension_hold").protocol_params("isometric_holds")["holds"] == 5


def test_user_exercise_overrides_and_adds_without_code(tmp_path: Path) -> None:
    (tmp_path / "mine.toml").write_text(
        'id = "banded_good_morning"\nname = "My good morning"\n[tempo]\ndefault = "5-1-X-0"\n'
    )
    (tmp_path / "new.toml").write_text(
        'id = "jefferson_curl"\nname = "Jefferson curl"\n[motion]\nprimary_axis = [0, 2, 0]\n'
    )
    library = load_library(tmp_path)
    assert library.get("banded_good_morning").name == "My good morning"
    assert format_tempo(library.get("banded_good_morning").tempo) == "5-1-X-0"
    assert library.get("jefferson_curl").primary_axis == (0.0, 1.0, 0.0)
    assert len(library) == len(DESIGN_EXERCISES) + 1


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('id = "a"\nname = "A"\n[motion]\nmin_rom_deg = -3\n', "motion.min_rom_deg = -3"),
        ('id = "a"\nname = "A"\n[tempo]\ndefault = "fast"\n', "tempo.default = 'fast'"),
        ('id = "a"\nname = "A"\n[motion]\nprimary_axis = [0, 0, 0]\n', "motion.primary_axis"),
        ('id = "a"\nname = "A"\nkind = "jump"\n', "kind = 'jump'"),
        ('id = "a"\nname = "A"\n[hold]\ntarget = 3\n', "hold.target = 3"),
        ('name = "A"\n', "'id' is missing"),
        ('id = "a"\nname = "A"\n[cues.go]\npattern = "buzz"\n', "cues.go.pattern = 'buzz'"),
        ('id = "a" name', "not valid TOML"),
    ],
)
def test_bad_exercise_file_gets_one_error_naming_key_and_value(
    tmp_path: Path, text: str, needle: str
) -> None:
    (tmp_path / "bad.toml").write_text(text)
    with pytest.raises(DataFormatError) as info:
        load_library(tmp_path)
    message = str(info.value)
    assert needle in message and "bad.toml" in message and "\n" not in message


def test_tempo_parsing() -> None:
    assert parse_tempo("3-1-X-0").concentric_s == 0.0
    assert parse_tempo("31X0") == parse_tempo("3-1-X-0")
    with pytest.raises(ValueError):
        parse_tempo("3-1-1")


def test_config_layers_and_types(tmp_path: Path) -> None:
    device = tmp_path / "device.toml"
    user = tmp_path / "user.toml"
    device.write_text('[store]\ncommit_interval_s = 1\n[coaching]\nmode = "tracking"\n')
    user.write_text('[coaching]\nmode = "training"\n')
    config = load_config([device, user, tmp_path / "absent.toml"])
    assert config["store"]["commit_interval_s"] == 1.0
    assert isinstance(config["store"]["commit_interval_s"], float)
    assert config["coaching"]["mode"] == "training"
    assert config.sources == (device, user)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[store]\ncommit_interval_s = 0\n", "store.commit_interval_s = 0"),
        ('[coaching]\nmode = "loud"\n', "coaching.mode = 'loud'"),
        ("[coaching]\nhaptics = 1\n", "coaching.haptics = 1"),
        ("[store]\ncommit_intervl_s = 1\n", "unknown key store.commit_intervl_s"),
        ("[nope]\na = 1\n", "unknown section [nope]"),
        ("[store\n", "not valid TOML"),
    ],
)
def test_bad_config_gets_one_error_naming_key_and_value(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config([path])
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_every_config_key_is_documented_with_its_unit() -> None:
    doc = (REPO / "docs" / "configuration.md").read_text()
    rows = {
        m.group(1): m.group(2).strip()
        for m in re.finditer(r"^\| `([a-z_]+\.[a-z_]+)` \| [^|]+ \| ([^|]*) \|", doc, re.MULTILINE)
    }
    expected = {f"{s}.{k}": key.unit for s, keys in SCHEMA.items() for k, key in keys.items()}
    assert set(rows) == set(expected)
    for name, unit in expected.items():
        assert rows[name] == (unit or "-"), name


def test_state_dir_resolution_order(tmp_path: Path) -> None:
    env = {"SPINECOACH_STATE_DIR": str(tmp_path / "a"), "STATE_DIRECTORY": "/var/lib/x:/y"}
    assert resolve_state_dir("", env) == tmp_path / "a"
    assert resolve_state_dir("", {"STATE_DIRECTORY": "/var/lib/x:/y"}) == Path("/var/lib/x")
    assert resolve_state_dir("/srv/s", {"STATE_DIRECTORY": "/var/lib/x"}) == Path("/srv/s")
    assert "spinecoach" in str(resolve_state_dir("", {}))


@pytest.mark.parametrize("command", ["history", "session", "export"])
def test_bad_config_exits_78_with_one_line(tmp_path: Path, command: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[coaching]\nmode = "loud"\n')
    extra = ["--session", "1"] if command == "export" else []
    out = subprocess.run(
        [sys.executable, "-m", "spinecoach", command, "--config", str(path), *extra],
        capture_output=True, text=True, env={"SPINECOACH_STATE_DIR": str(tmp_path), "PATH": ""},
    )
    assert out.returncode == 78, out.stderr
    assert "coaching.mode = 'loud'" in out.stderr and "expected one of 'training', 'tracking'" \
        in out.stderr
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr
