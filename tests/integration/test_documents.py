"""documents.process: type by content, size limit, SHA-256 and metadata of
real files (a PDF written here, a PNG encoded with zlib, a JPEG rendered
by pdftoppm), and clean failures for truncated, unsupported and missing
files."""

import hashlib
import re
import shutil
import struct
import subprocess
import zlib

import pytest

DOC_TASK = "documents.process"


def make_pdf(npages):
    """A small valid PDF with npages pages, each saying its number."""
    objs = []
    kids = " ".join("%d 0 R" % (4 + 2 * i) for i in range(npages))
    objs.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objs.append(("<< /Type /Pages /Kids [%s] /Count %d >>"
                 % (kids, npages)).encode())
    objs.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    for i in range(npages):
        text = ("BT /F1 24 Tf 72 720 Td (Page %d) Tj ET" % (i + 1)).encode()
        objs.append(("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
                     "/Resources << /Font << /F1 3 0 R >> >> "
                     "/Contents %d 0 R >>" % (5 + 2 * i)).encode())
        objs.append(b"<< /Length %d >>\nstream\n" % len(text) + text
                    + b"\nendstream")
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for n, body in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % n + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += (b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n"
            % (len(objs) + 1, xref))
    return bytes(out)


def make_png(width, height):
    """An RGB PNG with a gradient, encoded by hand."""
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff))
    raw = b"".join(b"\0" + bytes((x * 7 + y) % 256 for x in range(width)
                                 for _ in range(3))
                   for y in range(height))
    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0,
                                         0, 0))
            + chunk(b"IDAT", zlib.compress(raw))
            + chunk(b"IEND", b""))


@pytest.fixture
def daemon(celeriacd):
    return celeriacd(config={
        "queues": {"documents": {"concurrency": 1}},
        "tasks": {DOC_TASK: {"run": "builtin:documents.process",
                             "queue": "documents", "max_retries": 0}},
    })


def process(daemon, path, timeout=15, **kwargs):
    return daemon.app.send_task(DOC_TASK, args=[str(path)], kwargs=kwargs,
                                queue="documents").get(timeout=timeout)


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_good_pdf(daemon, tmp_path):
    p = tmp_path / "contrat.pdf"
    p.write_bytes(make_pdf(3))
    res = process(daemon, p)
    assert res["content_type"] == "application/pdf"
    assert res["pages"] == 3
    assert res["pdf_version"] == "1.4"
    assert res["size"] == p.stat().st_size
    assert res["sha256"] == sha256(p)
    assert res["path"] == str(p)
    # pdfinfo agrees on the page count.
    if shutil.which("pdfinfo"):
        out = subprocess.run(["pdfinfo", str(p)], capture_output=True,
                             text=True, check=True).stdout
        assert re.search(r"^Pages:\s+3$", out, re.M), out


def test_good_png(daemon, tmp_path):
    p = tmp_path / "scan.png"
    p.write_bytes(make_png(37, 21))
    res = process(daemon, p)
    assert res["content_type"] == "image/png"
    assert (res["width"], res["height"]) == (37, 21)
    assert res["sha256"] == sha256(p)
    assert "pages" not in res


def test_type_is_by_content_not_name(daemon, tmp_path):
    p = tmp_path / "looks-like.pdf"
    p.write_bytes(make_png(5, 4))
    assert process(daemon, p)["content_type"] == "image/png"


def test_good_jpeg(daemon, tmp_path):
    if not shutil.which("pdftoppm"):
        pytest.skip("pdftoppm (poppler-utils) is not installed")
    src = tmp_path / "one.pdf"
    src.write_bytes(make_pdf(1))
    subprocess.run(["pdftoppm", "-jpeg", "-singlefile", "-scale-to-x", "64",
                    "-scale-to-y", "48", str(src), str(tmp_path / "photo")],
                   check=True)
    p = tmp_path / "photo.jpg"
    res = process(daemon, p)
    assert res["content_type"] == "image/jpeg"
    assert (res["width"], res["height"]) == (64, 48)
    assert res["sha256"] == sha256(p)


def failure(daemon, path, **kwargs):
    with pytest.raises(Exception) as e:
        process(daemon, path, **kwargs)
    return e.value


def test_truncated_pdf(daemon, tmp_path):
    data = make_pdf(4)
    p = tmp_path / "half.pdf"
    p.write_bytes(data[:len(data) // 2])
    e = failure(daemon, p)
    assert type(e).__name__ == "DocumentError", repr(e)
    assert "truncated" in str(e)


def test_truncated_png(daemon, tmp_path):
    data = make_png(40, 40)
    p = tmp_path / "half.png"
    p.write_bytes(data[:len(data) - 20])
    e = failure(daemon, p)
    assert type(e).__name__ == "DocumentError", repr(e)
    assert "truncated" in str(e)


def test_missing_file(daemon, tmp_path):
    e = failure(daemon, tmp_path / "nowhere.pdf")
    assert isinstance(e, FileNotFoundError), repr(e)
    assert "nowhere.pdf" in str(e)


def test_unsupported_and_empty(daemon, tmp_path):
    p = tmp_path / "notes.txt"
    p.write_text("just text\n")
    e = failure(daemon, p)
    assert type(e).__name__ == "DocumentError"
    assert "unsupported" in str(e)
    p = tmp_path / "empty.pdf"
    p.write_bytes(b"")
    assert "empty" in str(failure(daemon, p))


def test_size_limit_and_bad_paths(daemon, tmp_path):
    p = tmp_path / "big.png"
    p.write_bytes(make_png(64, 64))
    e = failure(daemon, p, max_size=100)
    assert type(e).__name__ == "DocumentError"
    assert "limit" in str(e)
    assert isinstance(failure(daemon, "relative/path.pdf"), ValueError)
    assert isinstance(failure(daemon, tmp_path), IsADirectoryError)
    # A link is not followed out of the upload area.
    (tmp_path / "link.png").symlink_to(p)
    assert type(failure(daemon, tmp_path / "link.png")).__name__ == \
        "DocumentError"
