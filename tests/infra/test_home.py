"""Where deployments live: --home, $HERACLIUS_HOME, the old ./deployments when it holds some, else
the user data directory (platformdirs)."""

from __future__ import annotations

from infra.model.deployment import default_home, home_dir, home_notice


def test_default_home_is_the_user_data_dir(tmp_path, monkeypatch):
    monkeypatch.delenv("HERACLIUS_HOME", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)
    assert home_dir() == default_home() == tmp_path / "xdg" / "heraclius" / "deployments"
    assert home_notice() is None
    (tmp_path / "deployments").mkdir()  # an empty ./deployments is not a home
    assert home_dir() == default_home()


def test_old_home_in_the_current_directory_is_still_found(tmp_path, monkeypatch):
    monkeypatch.delenv("HERACLIUS_HOME", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "deployments" / "old").mkdir(parents=True)
    (tmp_path / "deployments" / "old" / "manifest.json").write_text("{}")
    assert home_dir() == tmp_path / "deployments"
    note = home_notice()
    assert note and "old default home" in note and str(default_home()) in note


def test_explicit_home_wins(tmp_path, monkeypatch):
    monkeypatch.setenv("HERACLIUS_HOME", str(tmp_path / "env"))
    assert home_dir() == tmp_path / "env"
    assert home_dir(tmp_path / "arg") == tmp_path / "arg"
    assert home_notice() is None
