"""Runtime requirements declared by a learnware (``environment.yaml`` or ``requirements.txt``): one model, one policy.

Why one module: requirements used to be parsed up to six times by two parsers with two error families. Here they are
parsed once into a typed :class:`Requirements` value and the whole policy is applied once, at validate:

- only plain PyPI requirement specifiers: options (``-e``, ``-r``, ``--index-url`` ...), URLs and local paths would
  let an uploader point the build at arbitrary code or indexes;
- ``learnware`` pins are dropped from the environment (the runtime's shim provides ``learnware.model``);
- ``torch`` is never installed into a learnware environment (it would pull GBs of CUDA wheels): a torch learnware
  runs on the dock's own interpreter, so its torch pin and every other pin must be met by the dock.

Every refusal is one :class:`RequirementsError` (an :class:`InvalidPackageError`, so the submission ends INVALID)
with one code, ``requirements_disallowed``; ``facts["reason"]`` says which rule (``pip_option``, ``url``,
``local_path``, ``unparsable``, ``torch_unmet``, ``needs_dock``, ``too_large``, ``encoding``, ``structure``).
The runtime keys environments from :attr:`Requirements.pins`, the normalised, host-evaluated view, and never
re-parses or re-checks.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from lwlib.errors import InvalidPackageError

__all__ = [
    "DROPPED",
    "HOST_ONLY",
    "Pin",
    "Requirements",
    "RequirementsError",
    "as_requirements",
    "normalize_requirement",
    "normalize_requirement_lines",
    "read_requirements",
    "unmet_by_dock",
]

logger = logging.getLogger(__name__)

MAX_REQUIREMENTS_BYTES = 256 * 1024
MAX_LINE_CHARS = 1000
ENV_FILES = ("environment.yaml", "environment.yml")
REQ_FILE = "requirements.txt"
DROPPED = frozenset({"learnware"})  # the runtime's shim provides learnware.model
HOST_ONLY = frozenset({"torch"})  # never installed into a learnware environment
_HASH_OPT = re.compile(r"\s+--hash[=\s]\S+")
_PY_SPEC = re.compile(r"^python\s*(?:[=<>!~]=?|=)\s*(\d+)(?:\.(\d+))?")


class RequirementsError(InvalidPackageError):
    """The learnware's requirements are refused (one code; ``facts["reason"]`` names the rule)."""

    default_code = "requirements_disallowed"


@dataclass(frozen=True)
class Pin:
    """One requirement as the runtime installs it: canonical name, extras and merged specifier, markers applied."""

    name: str
    specifier: SpecifierSet = SpecifierSet()
    extras: tuple[str, ...] = ()

    def __str__(self) -> str:
        extras = f"[{','.join(self.extras)}]" if self.extras else ""
        return f"{self.name}{extras}{','.join(sorted(str(s) for s in self.specifier))}"

    def met_by(self, version: str) -> bool:
        """Whether an installed ``version`` satisfies this pin (pre-releases allowed: the dock pins what it has)."""
        return not self.specifier or self.specifier.contains(version, prereleases=True)


@dataclass(frozen=True)
class Requirements:
    """Normalised runtime requirements.

    Attributes
    ----------
    kind : {"pip", "conda", "none"}
        Where they came from (``conda`` = an environment.yaml, whose pip section is used).
    packages : tuple of str
        Normalised pip requirement lines as declared, sorted and unique (markers kept).
    python : str or None
        ``"major.minor"`` asked for by environment.yaml, if any.
    ignored : tuple of str
        Conda-only dependencies that are not installed (no conda here).
    """

    kind: Literal["pip", "conda", "none"] = "none"
    packages: tuple[str, ...] = ()
    python: str | None = None
    ignored: tuple[str, ...] = ()

    @classmethod
    def from_lines(cls, lines: Iterable[str], *, source: str = "requirements") -> Requirements:
        """Parse pip lines and apply the whole policy (the one entry point besides :func:`read_requirements`)."""
        reqs = cls(kind="pip", packages=normalize_requirement_lines(lines, source=source))
        check_runnable(reqs, source=source)
        return reqs

    def normalized_key(self) -> str:
        """sha256 of the sorted packages and the python version: equal keys can share one environment."""
        text = "\n".join(sorted(self.packages)) + f"\npython={self.python or ''}"
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def to_text(self) -> str:
        """``requirements.txt`` content for the packages."""
        return "".join(p + "\n" for p in self.packages)

    @functools.cached_property
    def pins(self) -> tuple[Pin, ...]:
        """What an environment for this host installs: markers evaluated here, ``learnware`` dropped, one pin per
        name (duplicate lines merged), sorted by name. Derived from the already validated ``packages``."""
        merged: dict[str, Pin] = {}
        for line in self.packages:
            req = Requirement(line)  # validated by normalize_requirement: cannot fail
            name = canonicalize_name(req.name)
            if name in DROPPED or (req.marker is not None and not req.marker.evaluate()):
                continue
            old = merged.get(name)
            spec = req.specifier if old is None else old.specifier & req.specifier
            extras = set(req.extras) | (set(old.extras) if old else set())
            merged[name] = Pin(name, spec, tuple(sorted(extras)))
        return tuple(merged[k] for k in sorted(merged))

    @property
    def host_only(self) -> tuple[Pin, ...]:
        """Pins that only the dock's own interpreter may provide (``torch``)."""
        return tuple(p for p in self.pins if p.name in HOST_ONLY)


def _refuse(line: str, source: str, reason: str, why: str) -> RequirementsError:
    return RequirementsError(f"{source}: requirement line {line[:200]!r} is not allowed ({why}). List plain PyPI "
                             "requirements like 'numpy==2.1.0' only.", line=line[:200], source=source, reason=reason)


def normalize_requirement(line: str, *, source: str = REQ_FILE) -> str:
    """Return one requirement in canonical form (``Scikit_Learn >= 1.0`` → ``scikit-learn>=1.0``).

    Raises
    ------
    RequirementsError
        Pip options, URLs, local paths or archives, unparsable lines.
    """
    line = _HASH_OPT.sub("", line).strip()
    if len(line) > MAX_LINE_CHARS:
        raise _refuse(line, source, "unparsable", f"longer than {MAX_LINE_CHARS} characters")
    if line.startswith("-"):
        raise _refuse(line, source, "pip_option", "pip options such as -e, -r, -c, --index-url are refused")
    if "://" in line or re.search(r"(^|\s)@\s*\S", line) or line.startswith("git+"):
        raise _refuse(line, source, "url", "URLs and direct references are refused")
    if line.startswith((".", "/", "~")) or "\\" in line or re.search(r"\.(whl|zip|tar\.gz|tgz)$", line) or (
            "/" in line.split(";")[0]):
        raise _refuse(line, source, "local_path", "local paths and archives are refused")
    try:
        req = Requirement(line)
    except InvalidRequirement as exc:
        raise RequirementsError(f"{source}: {line!r} is not a valid requirement ({exc}); write e.g. "
                                "'scikit-learn==1.5.2'.", line=line, source=source, reason="unparsable") from exc
    if req.url:
        raise _refuse(line, source, "url", "URLs and direct references are refused")
    out: str = canonicalize_name(req.name)
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


def unmet_by_dock(pins: Iterable[Pin]) -> list[str]:
    """Pins the dock's own interpreter does not meet, as ``"pin (why)"`` texts (missing or another version)."""
    missing = []
    for pin in pins:
        try:
            version = importlib.metadata.version(pin.name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(f"{pin} (not installed)")
            continue
        if not pin.met_by(version):
            missing.append(f"{pin} (dock has {version})")
    return missing


def check_runnable(reqs: Requirements, *, source: str = REQ_FILE) -> None:
    """Apply the host part of the policy: a torch learnware runs on the dock's interpreter, so all its pins must be
    met by the dock. Raises :class:`RequirementsError` otherwise."""
    torch = reqs.host_only
    if not torch:
        return
    unmet_torch = unmet_by_dock(torch)
    if unmet_torch:
        raise RequirementsError(
            f"{source}: {unmet_torch[0]}: torch is never installed into a learnware environment (it would pull GBs "
            "of CUDA wheels); the model runs on the dock's torch. Pin the dock's torch (e.g. torch==2.13.0) or "
            "leave torch unpinned.", line=str(torch[0]), source=source, reason="torch_unmet")
    others = unmet_by_dock(p for p in reqs.pins if p.name not in HOST_ONLY)
    if others:
        raise RequirementsError(
            f"{source}: a torch learnware runs on the dock's own interpreter, which does not meet: "
            f"{', '.join(others[:5])}. Relax these pins to versions the dock has.",
            line=others[0].split(" (")[0], source=source, reason="needs_dock")


def as_requirements(value: Any) -> Requirements:
    """Accept a :class:`Requirements` as is; parse a string or an iterable of pip lines with the one policy."""
    if isinstance(value, Requirements):
        return value
    if value is None:
        return Requirements()
    if isinstance(value, str):
        value = value.splitlines()
    return Requirements.from_lines(list(value))


def _read_text(path: Path) -> str:
    size = path.stat().st_size
    if size > MAX_REQUIREMENTS_BYTES:
        raise RequirementsError(f"{path.name} is {size} bytes; the limit is {MAX_REQUIREMENTS_BYTES}. List only "
                                "what the model needs to run.", source=path.name, reason="too_large")
    raw = path.read_bytes()
    try:
        if raw.startswith((b"\xff\xfe", b"\xfe\xff")):  # PowerShell's `pip freeze >` writes UTF-16
            return raw.decode("utf-16")
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise RequirementsError(f"{path.name} is not UTF-8 text ({exc.reason} at byte {exc.start}); save it as "
                                "UTF-8.", source=path.name, reason="encoding") from exc


def _python_version(spec: str) -> str | None:
    m = _PY_SPEC.match(spec.strip())
    if not m:
        return None
    return m.group(1) + (f".{m.group(2)}" if m.group(2) else "")


def _structure(path: Path, what: str) -> RequirementsError:
    return RequirementsError(f"{path.name}: {what}; export it with `conda env export`.", source=path.name,
                             reason="structure")


def _from_environment(path: Path) -> Requirements:
    try:
        data: Any = yaml.safe_load(_read_text(path))
    except (yaml.YAMLError, RecursionError) as exc:
        raise _structure(path, f"not valid YAML ({type(exc).__name__})") from None
    if data is None:
        data = {}
    deps = data.get("dependencies", []) if isinstance(data, dict) else None
    if not isinstance(deps, list):
        raise _structure(path, "must be a mapping with a 'dependencies' list")
    pip_lines: list[str] = []
    ignored: list[str] = []
    python = None
    for dep in deps:
        if isinstance(dep, dict) and "pip" in dep:
            pip_section = dep["pip"] or []
            if not isinstance(pip_section, list) or not all(isinstance(x, str) for x in pip_section):
                raise _structure(path, "the pip section must be a list of strings")
            pip_lines.extend(pip_section)
        elif isinstance(dep, str):
            name = dep.split("::")[-1].strip()
            if re.match(r"^python(\s|[=<>!~]|$)", name):
                python = _python_version(name) or python
            elif not re.match(r"^pip(\s|[=<>!~]|$)", name):
                ignored.append(dep)
        else:
            raise _structure(path, f"unexpected dependency entry of type {type(dep).__name__}")
    if ignored:
        logger.info("%s: %d conda-only dependencies are not installed", path.name, len(ignored))
    packages = normalize_requirement_lines(pip_lines, source=path.name)
    return Requirements(kind="conda", packages=packages, python=python, ignored=tuple(ignored))


def read_requirements(root: str | Path) -> Requirements:
    """Read a package's requirements: ``environment.yaml`` (its pip section) first, else ``requirements.txt``.

    Parsed once and checked against the whole policy here, at validate, so a refused line ends the submission
    INVALID before any environment is built.

    Raises
    ------
    RequirementsError
        Code ``requirements_disallowed``; ``facts["reason"]`` names the rule that refused them.
    """
    root = Path(root)
    reqs = Requirements()
    source = REQ_FILE
    for name in ENV_FILES:
        if (root / name).is_file():
            reqs, source = _from_environment(root / name), name
            break
    else:
        if (root / REQ_FILE).is_file():
            text = _read_text(root / REQ_FILE)
            reqs = Requirements(kind="pip", packages=normalize_requirement_lines(text.splitlines(), source=REQ_FILE))
    check_runnable(reqs, source=source)
    return reqs
