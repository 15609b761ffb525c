"""``dmp pull`` against hostile input: every refusal is one ``error:`` line and exit 1, nothing changes.

Arguments (channel, segment, run date) are checked before any path is built or channels.yaml is
read; the local state, the destination folder, every manifest field the client relies on and the
data files themselves are checked before the local copy is touched. The deliveries are built with
the same helper as tests/delivery/test_pull.py (a file:// store); one case runs on a real MinIO.
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from dmp.cli import run
from dmp.delivery.layout import MANIFEST, SUCCESS
from dmp.delivery.manifest import manifest_bytes
from dmp.delivery.pull import pull
from dmp.delivery.storage import FileStore, S3Store, sha256_hex
from tests.delivery.test_pull import CH, SEG, A, B, C, current, publish, store  # noqa: F401 - fixture
from tests.support.s3server import MinioServer

DAY1, DAY2 = "2026-03-14", "2026-03-15"


@pytest.fixture()
def segments_dir(tmp_path: Path, store: FileStore, monkeypatch: pytest.MonkeyPatch) -> Path:  # noqa: F811
    """channels.yaml whose jd_ads destination is the test store (through an env variable, as in production)."""
    segs = tmp_path / "segments"
    segs.mkdir()
    (segs / "channels.yaml").write_text(
        "channels:\n  jd_ads:\n    type: ad\n    destination: ${PULL_HOSTILE_ROOT}\n    id_types: [oaid, idfa]\n"
        "    hash: {oaid: md5, idfa: md5}\n    sync: incremental\n"
    )
    monkeypatch.setenv("PULL_HOSTILE_ROOT", store.url)
    return segs


def dmp_pull(capsys: pytest.CaptureFixture[str], segs: Path, dest: Path, *extra: str) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of ``dmp pull`` run in-process through the CLI's one runner."""
    args = ["pull", "--channel", CH, "--segment", SEG, "--dest", str(dest), "--segments", str(segs)]
    code = run([*args, *extra])
    out = capsys.readouterr()
    return code, out.out, out.err


def refused(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    """stderr of a ``dmp`` command line that must fail with exit 1 and exactly one line."""
    assert run(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: "), err
    return err.removeprefix("error: ").removesuffix("\n")


def rewrite_manifest(store: FileStore, day: str, **changes: object) -> dict:  # noqa: F811
    path = store.root / CH / SEG / day / MANIFEST
    manifest = json.loads(path.read_text())
    manifest.update(changes)
    path.write_bytes(manifest_bytes(manifest))
    return manifest


# -- arguments: checked against their patterns before any path exists -------------------------------


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--segment", "../../../etc", "--segment: segment names match ^[a-z0-9_]+$, got '../../../etc'"),
        ("--segment", "Spring", "--segment: segment names match ^[a-z0-9_]+$, got 'Spring'"),
        ("--channel", "jd_ads/../x", "--channel: channel names match ^[a-z0-9_]+$, got 'jd_ads/../x'"),
        ("--channel", "", "--channel: channel names match ^[a-z0-9_]+$, got ''"),
        ("--run-date", "../2026-03-14", "--run-date: expected a date as YYYY-MM-DD, got '../2026-03-14'"),
        ("--run-date", "20260314", "--run-date: expected a date as YYYY-MM-DD, got '20260314'"),
        ("--run-date", "2026-02-30", "--run-date: expected a date as YYYY-MM-DD, got '2026-02-30'"),
    ],
)
def test_bad_arguments_are_refused_before_anything_is_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str, value: str, message: str
) -> None:
    args = {"--channel": CH, "--segment": SEG, "--run-date": None} | {option: value}
    argv = ["pull", "--channel", args["--channel"], "--segment", args["--segment"]]
    argv += ["--dest", str(tmp_path / "c"), "--segments", str(tmp_path / "no_such_folder")]
    if args["--run-date"] is not None:
        argv += ["--run-date", args["--run-date"]]
    # The segments folder does not exist: the argument check comes first, so that is never reported.
    assert refused(capsys, argv) == message
    assert not (tmp_path / "c").exists()


def test_library_entry_checks_arguments_too(store: FileStore, tmp_path: Path) -> None:  # noqa: F811
    from dmp.contracts.errors import DmpError

    with pytest.raises(DmpError) as err:
        pull(store, CH, "../../../etc", tmp_path / "c")
    assert str(err.value) == "--segment: segment names match ^[a-z0-9_]+$, got '../../../etc'"


def test_run_date_pins_a_delivery_and_rolls_back(
    store: FileStore,  # noqa: F811
    segments_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    dest = tmp_path / "c"
    m1 = publish(store, DAY1, "full", {"full": [A, B]})
    publish(store, DAY2, "incremental", {"add": [C], "remove": [A]}, (DAY1, m1))
    assert dmp_pull(capsys, segments_dir, dest)[0] == 0
    assert current(dest) == ["id_type,user_key", ",".join(C), ",".join(B)]
    code, out, _ = dmp_pull(capsys, segments_dir, dest, "--run-date", DAY1)
    assert code == 0 and f"applied {DAY1} from {CH}/{SEG}: 2 rows" in out
    assert current(dest) == ["id_type,user_key", ",".join(A), ",".join(B)]
    publish(store, "2026-03-16", "full", {"full": [A]}, complete=False)
    assert refused(capsys, [*_argv(segments_dir, dest), "--run-date", "2026-03-16"]) == (
        f"{store.url}/{CH}/{SEG}/2026-03-16: not a complete delivery (no {SUCCESS}); cannot apply it"
    )


def _argv(segs: Path, dest: Path) -> list[str]:
    return ["pull", "--channel", CH, "--segment", SEG, "--dest", str(dest), "--segments", str(segs)]


# -- the local side: DEST and .dmp_pull.json ------------------------------------------------------------


def test_dest_that_is_a_file(
    store: FileStore,  # noqa: F811
    segments_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    publish(store, DAY1, "full", {"full": [A]})
    dest = tmp_path / "a_file"
    dest.write_text("keep me\n")
    assert refused(capsys, _argv(segments_dir, dest)) == (
        f"--dest {dest}: is a file, expected a folder (it holds current.csv and .dmp_pull.json)"
    )
    assert dest.read_text() == "keep me\n"
    (tmp_path / "d" / "current.csv").mkdir(parents=True)
    assert refused(capsys, _argv(segments_dir, tmp_path / "d")) == (
        f"{tmp_path / 'd' / 'current.csv'}: is a folder, expected the file this client writes there"
    )


@pytest.mark.parametrize(
    ("state", "problem"),
    [
        (
            "{not json",
            "not valid JSON (Expecting property name enclosed in double quotes: line 1 column 2 (char 1))",
        ),
        ("", "not valid JSON (Expecting value: line 1 column 1 (char 0))"),
        ('{"applied": "x"}', "not a pull state file: applied: Input should be a valid list"),
        (
            '{"applied": [{"run_date": "../x"}]}',
            "not a pull state file: applied.0.run_date: expected a date as "
            "YYYY-MM-DD, got '../x'; applied.0.manifest_sha256: Field required",
        ),
        ("[" * 100_000, "not valid JSON (RecursionError)"),
        ('{"a": "\xff"}', "not valid JSON (UnicodeDecodeError)"),
    ],
    ids=["truncated", "empty", "shape", "bad_entry", "nested", "not_utf8"],
)
def test_corrupt_local_state_is_refused_and_kept(
    store: FileStore,  # noqa: F811
    segments_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    state: str,
    problem: str,
) -> None:
    dest = tmp_path / "c"
    publish(store, DAY1, "full", {"full": [A, B]})
    assert dmp_pull(capsys, segments_dir, dest)[0] == 0
    (dest / ".dmp_pull.json").write_bytes(state.encode("latin-1"))
    fix = f"delete it to rebuild {dest / 'current.csv'} from the latest full delivery"
    assert refused(capsys, _argv(segments_dir, dest)) == f"{dest / '.dmp_pull.json'}: {problem}; {fix}"
    assert current(dest) == ["id_type,user_key", ",".join(A), ",".join(B)]
    # Doing what the message says works.
    (dest / ".dmp_pull.json").unlink()
    assert dmp_pull(capsys, segments_dir, dest)[0] == 0


def test_state_of_another_segment_is_not_overwritten(
    store: FileStore,  # noqa: F811
    segments_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    dest = tmp_path / "c"
    publish(store, DAY1, "full", {"full": [A]})
    assert dmp_pull(capsys, segments_dir, dest)[0] == 0
    state = json.loads((dest / ".dmp_pull.json").read_text())
    (dest / ".dmp_pull.json").write_text(json.dumps(state | {"segment": "vip"}))
    assert refused(capsys, _argv(segments_dir, dest)) == (
        f"--dest {dest}: holds 'jd_ads/vip' (see .dmp_pull.json), not jd_ads/spring; "
        "give each channel and segment its own --dest"
    )


# -- the remote side: manifests and data files ---------------------------------------------------------


def _secret_file(tmp_path: Path, store: FileStore) -> tuple[str, dict]:  # noqa: F811
    """A valid-looking gzip CSV OUTSIDE the delivery folder, and a manifest entry that points at it.

    Size and sha256 match, so without the path check the client would read it and apply it.
    """
    outside = tmp_path / "outside.csv.gz"
    outside.write_bytes(gzip.compress(b"id_type,user_key\noaid," + b"e" * 32 + b"\n", mtime=0))
    data = outside.read_bytes()
    relative = os.path.relpath(outside, store.root / CH / SEG / DAY1)
    return relative, {"kind": "full", "rows": 1, "bytes": len(data), "sha256": sha256_hex(data)}


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "dot", "empty_part"])
def test_manifest_file_paths_must_stay_in_the_folder(
    store: FileStore,  # noqa: F811
    segments_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    kind: str,
) -> None:
    publish(store, DAY1, "full", {"full": [A]})
    relative, entry = _secret_file(tmp_path, store)
    path = {
        "dotdot": relative,
        "absolute": str(tmp_path / "outside.csv.gz"),
        "dot": "./full/part-00000.csv.gz",
        "empty_part": "full//part-00000.csv.gz",
    }[kind]
    assert kind != "dotdot" or path.startswith("../")
    rewrite_manifest(store, DAY1, files=[entry | {"path": path}])
    shown = repr(path) if len(repr(path)) <= 80 else None
    msg = refused(capsys, _argv(segments_dir, tmp_path / "c"))
    where = f"{store.url}/{CH}/{SEG}/{DAY1}/{MANIFEST}"
    prefix = (
        f"{where}: invalid manifest: files.0.path: must be a relative path inside the delivery folder "
        "(no '..', '.', empty or leading '/' parts, no backslash), got "
    )
    assert msg.startswith(prefix), msg
    if shown:
        assert msg == prefix + shown
    assert not (tmp_path / "c").exists()


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (
            b"{",
            "not valid JSON (Expecting property name enclosed in double quotes: line 1 column 2 (char 1))",
        ),
        (b"[" * 100_000, "not a readable JSON manifest (RecursionError)"),
        (b'{"rows": 1' + b"0" * 5000 + b"}", "not a readable JSON manifest (ValueError)"),
        (b"[]", "expected a JSON object, got list"),
    ],
    ids=["truncated", "nested", "huge_number", "array"],
)
def test_malformed_manifest_json(
    store: FileStore,  # noqa: F811
    segments_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    body: bytes,
    problem: str,
) -> None:
    publish(store, DAY1, "full", {"full": [A]})
    (store.root / CH / SEG / DAY1 / MANIFEST).write_bytes(body)
    where = f"{store.url}/{CH}/{SEG}/{DAY1}/{MANIFEST}"
    assert refused(capsys, _argv(segments_dir, tmp_path / "c")) == f"{where}: {problem}"


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"mode": "sideways"}, "invalid manifest: mode: Input should be 'full' or 'incremental'"),
        ({"files": "all"}, "invalid manifest: files: Input should be a valid list"),
        ({"key_columns": ["nope"]}, "invalid manifest: key_columns: ['nope'] are not all in columns"),
        (
            {
                "files": [
                    {"path": "full/p.csv.gz", "kind": "full", "rows": "1", "bytes": 1, "sha256": "0" * 64}
                ]
            },
            "invalid manifest: files.0.rows: Input should be a valid integer",
        ),
        (
            {"files": [{"path": "add/p.csv.gz", "kind": "add", "rows": 0, "bytes": 1, "sha256": "0" * 64}]},
            "invalid manifest: files: kind ['add'] in a full delivery (allowed: ['full'])",
        ),
        (
            {"run_date": DAY2},
            f"manifest is for 'jd_ads/spring/{DAY2}', but it sits in jd_ads/spring/{DAY1} "
            "(a folder copied from elsewhere?); ask the sender to re-deliver",
        ),
    ],
    ids=["mode", "files", "key_columns", "rows_as_text", "kind_vs_mode", "copied_folder"],
)
def test_manifest_fields_are_checked(
    store: FileStore,  # noqa: F811
    segments_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    changes: dict,
    problem: str,
) -> None:
    publish(store, DAY1, "full", {"full": [A]})
    rewrite_manifest(store, DAY1, **changes)
    where = f"{store.url}/{CH}/{SEG}/{DAY1}/{MANIFEST}"
    assert refused(capsys, _argv(segments_dir, tmp_path / "c")) == f"{where}: {problem}"


def test_previous_must_be_an_earlier_day(
    store: FileStore,  # noqa: F811
    segments_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A ``previous`` pointing at its own day (or later) could make the chain loop; refused."""
    m1 = publish(store, DAY1, "full", {"full": [A]})
    publish(store, DAY2, "incremental", {"add": [B], "remove": []}, (DAY1, m1))
    rewrite_manifest(store, DAY2, previous={"run_date": DAY2, "path": "x", "manifest_sha256": "0" * 64})
    where = f"{store.url}/{CH}/{SEG}/{DAY2}/{MANIFEST}"
    assert refused(capsys, _argv(segments_dir, tmp_path / "c")) == (
        f"{where}: invalid manifest: previous.run_date {DAY2} is not before run_date {DAY2}"
    )


def _replace_data_file(store: FileStore, data: bytes, rows: int) -> str:  # noqa: F811
    """Put ``data`` as the full file with a manifest entry that matches it (size, sha256, rows)."""
    part = store.root / CH / SEG / DAY1 / "full" / "part-00000.csv.gz"
    part.write_bytes(data)
    entry = {"path": "full/part-00000.csv.gz", "kind": "full", "rows": rows, "bytes": len(data)}
    rewrite_manifest(store, DAY1, files=[entry | {"sha256": sha256_hex(data)}])
    return f"{store.url}/{CH}/{SEG}/{DAY1}/full/part-00000.csv.gz"


def test_data_files_that_match_their_checksums_but_are_hostile(
    store: FileStore,  # noqa: F811
    segments_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    publish(store, DAY1, "full", {"full": [A]})
    dest = tmp_path / "c"
    where = _replace_data_file(store, b"plain text, not gzip", 1)
    assert refused(capsys, _argv(segments_dir, dest)) == f"{where}: not a readable gzip file (BadGzipFile)"
    # A gzip bomb: 50 MB of one line for a manifest that says 1 row; read no further than the bound.
    bomb = gzip.compress(b"id_type,user_key\n" + b"x" * 50_000_000, mtime=0)
    where = _replace_data_file(store, bomb, 1)
    assert refused(capsys, _argv(segments_dir, dest)) == (
        f"{where}: expands to more than 8192 bytes for 1 rows (at most 4096 bytes a line); refused"
    )
    where = _replace_data_file(store, gzip.compress(b"id_type,user_key\noaid,aa,extra\n", mtime=0), 1)
    assert refused(capsys, _argv(segments_dir, dest)) == (
        f"{where}: line 2 has 3 fields, expected 2 (['id_type', 'user_key'])"
    )
    where = _replace_data_file(store, gzip.compress(b"id_type,user_key\noaid,\xff\xfe\n", mtime=0), 1)
    assert (
        refused(capsys, _argv(segments_dir, dest)) == f"{where}: not UTF-8 (byte 22 of the decompressed file)"
    )
    assert not dest.exists()


def test_oversized_files_are_not_read_whole(
    store: FileStore,  # noqa: F811
    segments_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    publish(store, DAY1, "full", {"full": [A]})
    part = store.root / CH / SEG / DAY1 / "full" / "part-00000.csv.gz"
    size = part.stat().st_size
    part.write_bytes(part.read_bytes() + b"\0" * 10_000_000)  # replaced by something much larger
    assert refused(capsys, _argv(segments_dir, tmp_path / "c")) == (
        f"{store.url}/{CH}/{SEG}/{DAY1}/full/part-00000.csv.gz: larger than the manifest's {size} bytes "
        "(corrupt or replaced file); not downloaded further"
    )
    assert len(store.get(f"{CH}/{SEG}/{DAY1}/full/part-00000.csv.gz", max_bytes=size)) == size + 1
    (store.root / CH / SEG / DAY1 / MANIFEST).write_bytes(b" " * (16 * 1024 * 1024 + 1))
    assert refused(capsys, _argv(segments_dir, tmp_path / "c")) == (
        f"{store.url}/{CH}/{SEG}/{DAY1}/{MANIFEST}: larger than 16777216 bytes; a manifest is a few kilobytes, "
        "refused"
    )


# -- one s3:// case: the same refusal through a real MinIO over HTTP ----------------------------------


@pytest.fixture(scope="module")
def s3() -> Iterator[MinioServer]:
    with MinioServer() as server:
        server.create_bucket("pull-hostile")
        yield server


def test_s3_manifest_with_dotdot_path_is_refused(
    s3: MinioServer, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"s3://pull-hostile/{tmp_path.name}"
    remote = S3Store(url)
    publish(remote, DAY1, "full", {"full": [A]})  # type: ignore[arg-type]  # same put() as FileStore
    # An object outside the delivery folder with the right size and sha256.
    data = gzip.compress(b"id_type,user_key\noaid," + b"e" * 32 + b"\n", mtime=0)
    remote.put("elsewhere/x.csv.gz", data)
    folder = f"{CH}/{SEG}/{DAY1}"
    manifest = json.loads(remote.get(f"{folder}/{MANIFEST}"))
    entry = {"path": "../../../elsewhere/x.csv.gz", "kind": "full", "rows": 1, "bytes": len(data)}
    manifest["files"] = [entry | {"sha256": sha256_hex(data)}]
    remote.put(f"{folder}/{MANIFEST}", manifest_bytes(manifest))
    segs = tmp_path / "segs"
    segs.mkdir()
    (segs / "channels.yaml").write_text(
        f"channels:\n  jd_ads:\n    type: ad\n    destination: {url}/\n    id_types: [oaid]\n    hash: {{oaid: md5}}\n"
    )
    assert refused(capsys, _argv(segs, tmp_path / "c")) == (
        f"{url}/{folder}/{MANIFEST}: invalid manifest: files.0.path: must be a relative path inside the "
        "delivery folder (no '..', '.', empty or leading '/' parts, no backslash), got '../../../elsewhere/x.csv.gz'"
    )
    assert not (tmp_path / "c").exists()


def test_s3_store_at_a_bucket_root_lists_its_folders(s3: MinioServer) -> None:
    """``s3://bucket`` (no prefix) as a destination: channels are found at the bucket's root."""
    s3.create_bucket("bucket-root")
    root = S3Store("s3://bucket-root")
    root.put("jd_ads/spring/2026-03-14/_SUCCESS", b"")
    root.put("top.txt", b"x")
    assert root.list_dirs("") == ["jd_ads"]
    assert root.list_keys("") == ["jd_ads/spring/2026-03-14/_SUCCESS", "top.txt"]
    assert root.list_dirs("jd_ads") == ["spring"]
    assert root.list_keys("jd_ads/spring") == ["jd_ads/spring/2026-03-14/_SUCCESS"]


@pytest.mark.parametrize("key", ["../outside", "jd_ads/../../outside", "/etc/passwd", "a//b", "./a", ""])
def test_stores_refuse_keys_that_leave_their_root(
    store: FileStore,  # noqa: F811
    tmp_path: Path,
    key: str,
) -> None:
    """The last line of defence below the manifest checks: no key with '..' reaches a filesystem."""
    from dmp.contracts.errors import DmpError

    (tmp_path / "outside").write_text("secret")
    with pytest.raises(DmpError) as err:
        store.get(key)
    assert str(err.value) == (
        f"{store.url}: refusing object key {key!r}: keys are relative paths without '', '.' or '..' parts"
    )
    with pytest.raises(DmpError):
        store.put(key, b"x")
    assert (tmp_path / "outside").read_text() == "secret"
    assert store.list_keys("") == []  # listing the whole store is the one use of an empty key


def test_s3_store_refuses_keys_that_leave_its_prefix(s3: MinioServer, tmp_path: Path) -> None:
    from dmp.contracts.errors import DmpError

    remote = S3Store(f"s3://pull-hostile/{tmp_path.name}/inner")
    remote.put("ok/file", b"x")
    with pytest.raises(DmpError) as err:
        remote.get("../inner/ok/file")
    assert str(err.value) == (
        f"s3://pull-hostile/{tmp_path.name}/inner: refusing object key '../inner/ok/file': keys are relative "
        "paths without '', '.' or '..' parts"
    )
    assert remote.list_keys("") == ["ok/file"]


def test_s3_ranged_reads(s3: MinioServer, tmp_path: Path) -> None:
    """``get(max_bytes=N)`` on S3 is one ranged GET: at most N + 1 bytes arrive; an empty object is b""."""
    remote = S3Store(f"s3://pull-hostile/{tmp_path.name}")
    remote.put("big", b"x" * 1_000_000)
    remote.put("empty", b"")
    assert remote.get("big", max_bytes=10) == b"x" * 11
    assert remote.get("big", max_bytes=2_000_000) == b"x" * 1_000_000
    assert remote.get("empty", max_bytes=10) == b""
