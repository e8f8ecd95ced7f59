"""Where the packages come from: the Debian mirrors this machine's apt uses and the
package index its pip is configured with, read from the machine, never written here."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from devcluster.images.commands import ImageBuildError
from devcluster.images.specs import BASE_SUITE


@dataclass(frozen=True)
class AptSource:
    """One entry of apt's sources: a one-line `deb URI SUITE COMPONENT...` or a deb822
    paragraph (several URIs and suites)."""

    types: tuple[str, ...]
    uris: tuple[str, ...]
    suites: tuple[str, ...]
    components: tuple[str, ...]


def parse_sources_list(text: str) -> list[AptSource]:
    """The one-line format (sources.list(5)): `deb [options] uri suite [component ...]`."""
    found = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        kind, _, rest = line.partition(" ")
        rest = rest.strip()
        if rest.startswith("["):  # [arch=amd64 signed-by=...]
            rest = rest.partition("]")[2].strip()
        words = rest.split()
        if len(words) >= 2:
            found.append(AptSource((kind,), (words[0],), (words[1],), tuple(words[2:])))
    return found


def parse_deb822_sources(text: str) -> list[AptSource]:
    """The deb822 format (sources.list(5), `.sources` files): paragraphs of `Field: value`,
    continuation lines indented, `#` comments anywhere, `Enabled: no` skipped."""
    found = []
    for paragraph in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        last = None
        for line in paragraph.splitlines():
            if line.startswith("#") or not line.strip():
                continue
            if line[0].isspace() and last is not None:
                fields[last] += " " + line.strip()
                continue
            name, _, value = line.partition(":")
            last = name.strip().lower()
            fields[last] = value.strip()
        if not fields.get("uris") or fields.get("enabled", "yes").lower() == "no":
            continue
        found.append(AptSource(*(tuple(fields.get(f, "").split())
                                 for f in ("types", "uris", "suites", "components"))))  # fmt: skip
    return found


def apt_sources(etc_apt: Path = Path("/etc/apt")) -> list[AptSource]:
    """Every source apt reads: sources.list, then sources.list.d/*.list and *.sources in
    name order (files with other suffixes, `.disabled` ones, apt ignores too)."""
    found = []
    main = etc_apt / "sources.list"
    if main.is_file():
        found += parse_sources_list(main.read_text())
    parts = etc_apt / "sources.list.d"
    for path in sorted(parts.iterdir()) if parts.is_dir() else []:
        if path.suffix == ".list":
            found += parse_sources_list(path.read_text())
        elif path.suffix == ".sources":
            found += parse_deb822_sources(path.read_text())
    return found


def debian_mirrors(sources: Sequence[AptSource], release: str) -> tuple[str | None, str | None]:
    """(archive, security): the first `deb` source of component main for the machine's
    Debian `release` itself (`bookworm`, `bookworm-updates`) and the first for its
    `-security` suite. Another vendor's repository (its own suite, or components other
    than main, as Docker's `bookworm stable`) is neither."""
    archive = security = None
    for source in sources:
        if "deb" not in source.types or "main" not in source.components or not source.uris:
            continue
        uri = source.uris[0].rstrip("/")
        if security is None and f"{release}-security" in source.suites:
            security = uri
        if archive is None and {release, f"{release}-updates"} & set(source.suites):
            archive = uri
    return archive, security


def _os_release(path: Path) -> dict[str, str]:
    text = path.read_text() if path.is_file() else ""
    return {k: v.strip('"') for k, v in re.findall(r"^([A-Z_]+)=(.*)$", text, re.M)}


def debian_sources(
    env: Mapping[str, str] | None = None,
    etc_apt: Path = Path("/etc/apt"),
    os_release: Path = Path("/etc/os-release"),
) -> list[str]:
    """The mmdebstrap sources of the base: the Debian mirrors this machine's apt uses, or
    the ones $BODYPOSE_DEBIAN_MIRROR and $BODYPOSE_DEBIAN_SECURITY_MIRROR name."""
    env = os.environ if env is None else env
    mirror = env.get("BODYPOSE_DEBIAN_MIRROR") or None
    security = env.get("BODYPOSE_DEBIAN_SECURITY_MIRROR") or None
    if mirror is None or security is None:
        system = _os_release(os_release)
        if system.get("ID") != "debian":
            raise ImageBuildError(
                f"make images: the base is Debian {BASE_SUITE}, and this machine's apt "
                f"sources are not Debian's (ID={system.get('ID', 'unknown')} in "
                f"{os_release}): set BODYPOSE_DEBIAN_MIRROR and "
                "BODYPOSE_DEBIAN_SECURITY_MIRROR to a Debian mirror and its security mirror"
            )
        release = system.get("VERSION_CODENAME", "")
        archive, found = debian_mirrors(apt_sources(etc_apt), release)
        mirror, security = mirror or archive, security or found
    for value, what, variable in (
        (mirror, "archive", "BODYPOSE_DEBIAN_MIRROR"),
        (security, "security", "BODYPOSE_DEBIAN_SECURITY_MIRROR"),
    ):
        if value is None:
            raise ImageBuildError(
                f"make images: apt's sources in {etc_apt} name no Debian {what} mirror "
                f"(a deb entry of component main for this machine's release"
                f"{'' if what == 'archive' else ', its -security suite'}): set {variable}"
            )
    return [
        f"deb {mirror} {BASE_SUITE} main",
        f"deb {mirror} {BASE_SUITE}-updates main",
        f"deb {security} {BASE_SUITE}-security main",
    ]


def pip_config_index_url(listing: str) -> str | None:
    """The index in `pip config list`'s lines (`<where>.index-url='...'`), ranked as pip
    ranks them for `pip install`: the environment (`:env:`, $PIP_INDEX_URL) over the
    `[install]` section over `[global]`."""
    found = dict(re.findall(r"^([^\s=]+)\.index-url='(.*)'$", listing, re.M))
    return next((found[w] for w in (":env:", "install", "global") if found.get(w)), None)


def configured_index_url(env: Mapping[str, str] | None = None) -> str | None:
    """The package index this machine's pip is configured with, as pip itself reads it
    (`pip config list`: $PIP_INDEX_URL, $PIP_CONFIG_FILE, the site, user and global
    pip.conf files); None: none configured, pip's own default.

    A URL with credentials in it reaches the image's build history as a build argument:
    prefer an index that authenticates otherwise (a netrc, a keyring) for such builds."""
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"],
        env=dict(os.environ if env is None else env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return pip_config_index_url(proc.stdout) if proc.returncode == 0 else None
