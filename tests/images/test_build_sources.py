"""Where `make images` gets its packages: the package index and the Debian mirror this machine
is set up with (devcluster/images/), never a host written into the code.

pip's configuration is read by pip itself (`pip config list`) from a pip.conf fixture;
apt's sources are fixtures in both of apt's formats (sources.list(5): one-line `.list`
files and deb822 `.sources` files). Each test checks what devcluster/images/ passes on: the
mmdebstrap sources of the base, the build arguments of an image.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from devcluster.images import IMAGES, BuiltImage, ImageBuildError
from devcluster.images.base import mmdebstrap_args
from devcluster.images.builds import make_plan
from devcluster.images.sources import configured_index_url, debian_sources
from devcluster.images.specs import BASE_REF

DEBIAN = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_CODENAME=bookworm\n'

# deb822, as Debian 12 installs it, with what apt also accepts: comments inside a
# paragraph, a multi-line field, a paragraph switched off.
DEB822 = """\
Types: deb
# a snapshot of the same archive, kept as a comment
URIs: http://mirror.internal.test/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By:
 -----BEGIN PGP PUBLIC KEY BLOCK-----
 .
 mQINBGPL0BUBEADmW5NlOI
 -----END PGP PUBLIC KEY BLOCK-----

Types: deb
URIs: http://old.internal.test/debian
Suites: bookworm
Components: main
Enabled: no

Types: deb deb-src
URIs: http://mirror.internal.test/debian-security/
Suites: bookworm-security
Components: main contrib
"""
ONE_LINE = """\
# the same mirrors, the format before deb822
deb [arch=amd64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://apt.internal.test/debian bookworm main contrib
deb-src http://src.internal.test/debian bookworm main
deb http://apt.internal.test/debian bookworm-updates main
deb http://apt.internal.test/security bookworm-security main
"""  # noqa: E501
# Other vendors' repositories, named so that apt reads them first: their own suites, or
# components other than main, are not Debian's mirror.
VENDORS = """\
deb [signed-by=/etc/apt/keyrings/docker.asc] https://download.vendor.test/linux/debian bookworm stable
deb http://apt.vendor.test/pub/repos/apt bookworm-pgdg main
"""  # noqa: E501


def etc_apt(root: Path, files: dict[str, str]) -> Path:
    (root / "sources.list.d").mkdir(parents=True)
    for name, text in files.items():
        (root / name).write_text(text)
    return root


def sources(tmp_path: Path, files: dict[str, str], os_release: str = DEBIAN) -> list[str]:
    release = tmp_path / "os-release"
    release.write_text(os_release)
    return debian_sources({}, etc_apt(tmp_path / "apt", files), release)


def test_deb822_sources_give_the_base_its_mirrors(tmp_path: Path) -> None:
    files = {
        "sources.list.d/debian.sources": DEB822,
        "sources.list.d/a-vendor.list": VENDORS,
        "sources.list.d/b.sources.disabled": "Types: deb\nURIs: http://no.test/\n",
    }
    assert sources(tmp_path, files) == [
        "deb http://mirror.internal.test/debian bookworm main",
        "deb http://mirror.internal.test/debian bookworm-updates main",
        "deb http://mirror.internal.test/debian-security bookworm-security main",
    ]


def test_one_line_sources_give_the_base_its_mirrors(tmp_path: Path) -> None:
    files = {"sources.list": ONE_LINE, "sources.list.d/a-vendor.list": VENDORS}
    assert sources(tmp_path, files) == [
        "deb http://apt.internal.test/debian bookworm main",
        "deb http://apt.internal.test/debian bookworm-updates main",
        "deb http://apt.internal.test/security bookworm-security main",
    ]


def test_the_environment_overrides_apt_and_a_machine_that_is_not_debian_must_say(
    tmp_path: Path,
) -> None:
    given = {
        "BODYPOSE_DEBIAN_MIRROR": "http://given.test/debian",
        "BODYPOSE_DEBIAN_SECURITY_MIRROR": "http://given.test/security",
    }
    ubuntu = tmp_path / "os-release"
    ubuntu.write_text("ID=ubuntu\nID_LIKE=debian\nVERSION_CODENAME=noble\n")
    apt = etc_apt(tmp_path / "apt", {"sources.list": "deb http://ubuntu.test/ubuntu noble main\n"})
    assert debian_sources(given, apt, ubuntu)[0] == "deb http://given.test/debian bookworm main"
    with pytest.raises(ImageBuildError, match=r"ID=ubuntu .* set BODYPOSE_DEBIAN_MIRROR"):
        debian_sources({}, apt, ubuntu)


def test_sources_without_a_security_mirror_are_refused_with_the_variable_to_set(
    tmp_path: Path,
) -> None:
    with pytest.raises(ImageBuildError, match=r"security mirror .* BODYPOSE_DEBIAN_SECURITY"):
        sources(tmp_path, {"sources.list": "deb http://apt.internal.test/debian bookworm main\n"})


def test_the_base_is_made_from_the_mirrors_of_this_machine() -> None:
    args = mmdebstrap_args(Path("rootfs.tar"))
    assert args[-3:] == debian_sources()


PIP_CONF = """\
[global]
index-url = https://pypi.internal.test/simple
timeout = 60

[install]
index-url = https://install.internal.test/simple
"""


def pip_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    return {**env, **extra}


def test_the_index_is_the_one_pip_is_configured_with(tmp_path: Path) -> None:
    conf = tmp_path / "pip.conf"
    conf.write_text(PIP_CONF)
    # pip ranks [install] over [global] for `pip install`, and the environment over both.
    assert configured_index_url(pip_env(PIP_CONFIG_FILE=str(conf))) == (
        "https://install.internal.test/simple"
    )
    conf.write_text(PIP_CONF.partition("[install]")[0])
    assert configured_index_url(pip_env(PIP_CONFIG_FILE=str(conf))) == (
        "https://pypi.internal.test/simple"
    )
    given = pip_env(PIP_CONFIG_FILE=str(conf), PIP_INDEX_URL="https://env.internal.test/simple")
    assert configured_index_url(given) == "https://env.internal.test/simple"
    # No configuration at all (pip reads no file when PIP_CONFIG_FILE is os.devnull).
    assert configured_index_url(pip_env(PIP_CONFIG_FILE=os.devnull)) is None


def test_an_image_gets_the_configured_index_and_none_when_none_is_configured(
    tmp_path: Path,
) -> None:
    base = BuiltImage("base", BASE_REF, tmp_path / "base.tar", "", 0)
    spec = IMAGES["operator"]
    given = make_plan(spec, base, "sha256:base", None, "https://pypi.internal.test/simple")
    assert given.build_args["PIP_INDEX_URL"] == "https://pypi.internal.test/simple"
    default = make_plan(spec, base, "sha256:base", None, None)
    assert "PIP_INDEX_URL" not in default.build_args  # pip's own default in the build
    assert default.archive != given.archive  # another index, another image
