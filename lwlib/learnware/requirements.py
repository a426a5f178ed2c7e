"""Runtime requirements declared by a learnware (``environment.yaml`` or ``requirements.txt``).

Only plain PyPI requirement specifiers are accepted: options (``-e``, ``-r``, ``--index-url`` ...), URLs and
local paths would let an uploader point the build at arbitrary code or indexes, so they are refused with the
offending line named. Lines are normalised (canonical names, sorted specifiers) so two learnwares asking for the
same thing share one environment, keyed by :meth:`Requirements.normalized_key`.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from lwlib.errors import InvalidPackageError

__all__ = ["Requirements", "read_requirements", "normalize_requirement_lines", "normalize_requirement"]

logger = logging.getLogger(__name__)

MAX_REQUIREMENTS_BYTES = 256 * 1024
ENV_FILES = ("environment.yaml", "environment.yml")
REQ_FILE = "requirements.txt"
_HASH_OPT = re.compile(r"\s+--hash[=\s]\S+")
_PY_SPEC = re.compile(r"^python\s*(?:[=<>!~]=?|=)\s*(\d+)(?:\.(\d+))?")


@dataclass(frozen=True)
class Requirements:
    """Normalised runtime requirements.

    Attributes
    ----------
    kind : {"pip", "conda", "none"}
        Where they came from (``conda`` = an environment.yaml, whose pip section is used).
    packages : tuple of str
        Normalised pip requirement lines, sorted and unique.
    python : str or None
        ``"major.minor"`` asked for by environment.yaml, if any.
    ignored : tuple of str
        Conda-only dependencies that are not installed (no conda here).
    """

    kind: Literal["pip", "conda", "none"] = "none"
    packages: tuple[str, ...] = ()
    python: str | None = None
    ignored: tuple[str, ...] = ()

    def normalized_key(self) -> str:
        """sha256 of the sorted packages and the python version: equal keys can share one environment."""
        text = "\n".join(sorted(self.packages)) + f"\npython={self.python or ''}"
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def to_text(self) -> str:
        """``requirements.txt`` content for the packages."""
        return "".join(p + "\n" for p in self.packages)


def _disallowed(line: str, source: str, why: str) -> InvalidPackageError:
    return InvalidPackageError(f"{source}: requirement line {line!r} is not allowed ({why}). List plain PyPI "
                               "requirements like 'numpy==2.1.0' only.", code="requirements_disallowed",
                               line=line, source=source)


def normalize_requirement(line: str, *, source: str = REQ_FILE) -> str:
    """Return one requirement in canonical form (``Scikit_Learn >= 1.0`` → ``scikit-learn>=1.0``)."""
    line = _HASH_OPT.sub("", line).strip()
    if line.startswith("-"):
        raise _disallowed(line, source, "pip options such as -e, -r, -c, --index-url are refused")
    if "://" in line or re.search(r"(^|\s)@\s*\S", line) or line.startswith("git+"):
        raise _disallowed(line, source, "URLs and direct references are refused")
    if line.startswith((".", "/", "~")) or "\\" in line or re.search(r"\.(whl|zip|tar\.gz|tgz)$", line) or (
            "/" in line.split(";")[0]):
        raise _disallowed(line, source, "local paths and archives are refused")
    try:
        req = Requirement(line)
    except InvalidRequirement as exc:
        raise InvalidPackageError(f"{source}: {line!r} is not a valid requirement ({exc}); write e.g. "
                                  "'scikit-learn==1.5.2'.", code="requirements_invalid", line=line,
                                  source=source) from exc
    if req.url:
        raise _disallowed(line, source, "URLs and direct references are refused")
    out = canonicalize_name(req.name)
    if req.extras:
        out += "[" + ",".join(sorted(req.extras)) + "]"
    out += ",".join(sorted(str(s) for s in req.specifier))
    if req.marker is not None:
        out += f"; {req.marker}"
    return out


def normalize_requirement_lines(lines: Iterable[str], *, source: str = REQ_FILE) -> tuple[str, ...]:
    """Strip comments/blank lines, join ``\\`` continuations, normalise, sort and de-duplicate."""
    joined: list[str] = []
    buf = ""
    for raw in lines:
        raw = raw.rstrip("\r\n")
        if raw.rstrip().endswith("\\"):
            buf += raw.rstrip()[:-1] + " "
            continue
        joined.append(buf + raw)
        buf = ""
    if buf:
        joined.append(buf)
    out = set()
    for line in joined:
        line = re.sub(r"(^|\s)#.*$", "", line).strip()
        if line:
            out.add(normalize_requirement(line, source=source))
    return tuple(sorted(out))


def _read_text(path: Path) -> str:
    size = path.stat().st_size
    if size > MAX_REQUIREMENTS_BYTES:
        raise InvalidPackageError(f"{path.name} is {size} bytes; the limit is {MAX_REQUIREMENTS_BYTES}. List only "
                                  "what the model needs to run.", code="requirements_too_large", path=str(path))
    raw = path.read_bytes()
    try:
        if raw.startswith((b"\xff\xfe", b"\xfe\xff")):  # PowerShell's `pip freeze >` writes UTF-16
            return raw.decode("utf-16")
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidPackageError(f"{path.name} is not UTF-8 text ({exc}); save it as UTF-8.",
                                  code="requirements_encoding", path=str(path)) from exc


def _python_version(spec: str) -> str | None:
    m = _PY_SPEC.match(spec.strip())
    if not m:
        return None
    return m.group(1) + (f".{m.group(2)}" if m.group(2) else "")


def _from_environment(path: Path) -> Requirements:
    try:
        data: Any = yaml.safe_load(_read_text(path))
    except yaml.YAMLError as exc:
        raise InvalidPackageError(f"{path.name} is not valid YAML ({exc}); export it with `conda env export`.",
                                  code="requirements_invalid", path=str(path)) from exc
    if data is None:
        data = {}
    deps = data.get("dependencies", []) if isinstance(data, dict) else None
    if not isinstance(deps, list):
        raise InvalidPackageError(f"{path.name} must be a mapping with a 'dependencies' list; got {data!r:.200}.",
                                  code="requirements_invalid", path=str(path))
    pip_lines: list[str] = []
    ignored: list[str] = []
    python = None
    for dep in deps:
        if isinstance(dep, dict) and "pip" in dep:
            pip_section = dep["pip"] or []
            if not isinstance(pip_section, list) or not all(isinstance(x, str) for x in pip_section):
                raise InvalidPackageError(f"{path.name}: the pip section must be a list of strings.",
                                          code="requirements_invalid", path=str(path))
            pip_lines.extend(pip_section)
        elif isinstance(dep, str):
            name = dep.split("::")[-1].strip()
            if re.match(r"^python(\s|[=<>!~]|$)", name):
                python = _python_version(name) or python
            elif not re.match(r"^pip(\s|[=<>!~]|$)", name):
                ignored.append(dep)
        else:
            raise InvalidPackageError(f"{path.name}: unexpected dependency entry {dep!r}.",
                                      code="requirements_invalid", path=str(path))
    if ignored:
        logger.info("%s: %d conda-only dependencies are not installed: %s", path.name, len(ignored), ignored)
    packages = normalize_requirement_lines(pip_lines, source=path.name)
    return Requirements(kind="conda", packages=packages, python=python, ignored=tuple(ignored))


def read_requirements(root: str | Path) -> Requirements:
    """Read a package's requirements: ``environment.yaml`` (its pip section) first, else ``requirements.txt``.

    Raises
    ------
    InvalidPackageError
        ``requirements_disallowed`` (options, URLs, paths), ``requirements_invalid``, ``requirements_encoding``,
        ``requirements_too_large``.
    """
    root = Path(root)
    for name in ENV_FILES:
        if (root / name).is_file():
            return _from_environment(root / name)
    if (root / REQ_FILE).is_file():
        text = _read_text(root / REQ_FILE)
        return Requirements(kind="pip", packages=normalize_requirement_lines(text.splitlines(), source=REQ_FILE))
    return Requirements()
