"""PutBlob / GetBlob: chunked, checksummed, size-limited, content-addressed."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from swarmd.plugins.executors.kubernetes.transfer import TransferError, get_blob, put_blob
from swarmd.services.result_store.testing import ServedResultStore
from swarmd.v1 import result_store_pb2 as pb
from swarmd.v1.result_store_pb2_grpc import ResultStoreServiceStub


async def parts(*messages: pb.PutBlobRequest) -> AsyncIterator[pb.PutBlobRequest]:
    for message in messages:
        yield message


def header(data: bytes, **kw) -> pb.PutBlobRequest:  # type: ignore[no-untyped-def]
    return pb.PutBlobRequest(header=pb.BlobInfo(size=len(data), sha256=hashlib.sha256(data).hexdigest(), **kw))


async def test_a_blob_of_several_chunks_round_trips(tmp_path: Path, served: ServedResultStore) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    source = tmp_path / "in.bin"
    source.write_bytes(data)
    async with grpc.aio.insecure_channel(served.address) as channel:
        blob_id = await put_blob(channel, source)
        assert blob_id == hashlib.sha256(data).hexdigest()
        # The same bytes again are the same blob.
        assert await put_blob(channel, source) == blob_id
        out = tmp_path / "out.bin"
        assert await get_blob(channel, blob_id, out) == len(data)
    assert out.read_bytes() == data
    # Stored beside the database, under its id.
    assert (Path(str(served.store.settings.db_path) + ".blobs") / blob_id).read_bytes() == data


async def test_a_wrong_checksum_is_refused_and_nothing_is_kept(stub: ResultStoreServiceStub,
                                                              served: ServedResultStore) -> None:
    data = b"the bundle"
    bad = pb.PutBlobRequest(header=pb.BlobInfo(size=len(data), sha256="0" * 64))
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.PutBlob(parts(bad, pb.PutBlobRequest(chunk=data)))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "checksum mismatch" in info.value.details()
    assert list(served.store.blobs.directory.iterdir()) == []


@pytest.mark.parametrize(
    ("messages", "needle"),
    [
        ([pb.PutBlobRequest(chunk=b"x")], "must start with a header"),
        ([], "must start with a header"),
        ([header(b"abc"), pb.PutBlobRequest(chunk=b"ab")], "sent 2 bytes, its header announced 3"),
        ([header(b"abc"), pb.PutBlobRequest(chunk=b"abcd")], "more than the 3 bytes"),
        ([header(b"abc"), header(b"abc")], "second header"),
        ([pb.PutBlobRequest(header=pb.BlobInfo(size=3, sha256="nothex"))], "lower-case hex SHA-256"),
    ],
)
async def test_malformed_uploads_are_invalid(stub: ResultStoreServiceStub, messages: list, needle: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.PutBlob(parts(*messages))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert needle in info.value.details()


async def test_over_the_size_limit_is_resource_exhausted(stub: ResultStoreServiceStub, served: ServedResultStore) -> None:
    served.store.blobs.max_bytes = 10
    data = b"eleven byte"
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.PutBlob(parts(header(data), pb.PutBlobRequest(chunk=data)))
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "over the store's limit of 10 bytes" in info.value.details()


async def test_unknown_and_malformed_ids(tmp_path: Path, stub: ResultStoreServiceStub, served: ServedResultStore) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        async for _ in stub.GetBlob(pb.GetBlobRequest(blob_id="a" * 64)):
            pass
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as info:
        async for _ in stub.GetBlob(pb.GetBlobRequest(blob_id="../etc/passwd")):
            pass
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    async with grpc.aio.insecure_channel(served.address) as channel:
        with pytest.raises(TransferError, match="NOT_FOUND"):
            await get_blob(channel, "b" * 64, tmp_path / "x")


async def test_an_empty_blob_is_fine(tmp_path: Path, served: ServedResultStore) -> None:
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    async with grpc.aio.insecure_channel(served.address) as channel:
        blob_id = await put_blob(channel, empty)
        assert await get_blob(channel, blob_id, tmp_path / "back") == 0


async def test_the_sweeper_removes_blobs_after_a_day(tmp_path: Path, served: ServedResultStore, clock) -> None:  # type: ignore[no-untyped-def]
    data = tmp_path / "b"
    data.write_bytes(b"bundle")
    async with grpc.aio.insecure_channel(served.address) as channel:
        blob_id = await put_blob(channel, data)
    stored = served.store.blobs.directory / blob_id
    os.utime(stored, (clock(), clock()))
    clock.advance(23 * 3600)
    assert (await served.store.sweep()).blobs == 0 and stored.exists()
    clock.advance(2 * 3600)
    assert (await served.store.sweep()).blobs == 1 and not stored.exists()
