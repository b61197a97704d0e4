"""The sans-IO event-stream decoder (``trigraph.llm._sse``), and how
``ChatModel`` reads odd but legal streams (served by ``httpx.MockTransport``:
the edge cases a real server seldom produces on demand)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence

import httpx
import pytest
from hypothesis import given, strategies as st

from trigraph.llm import ChatModel, LLMError
from trigraph.llm._sse import ChatChunk, ServerSentEvent, SSEDecoder, error_message, read_chunk


def decode(*reads: bytes) -> list[ServerSentEvent]:
    decoder = SSEDecoder()
    return [event for raw in reads for event in decoder.feed(raw)]


def datas(*reads: bytes) -> list[str]:
    return [event.data for event in decode(*reads)]


# -- framing -------------------------------------------------------------


def test_several_events_in_one_read() -> None:
    assert datas(b"data: a\n\ndata: b\n\ndata: c\n\n") == ["a", "b", "c"]


def test_event_split_across_reads_is_dispatched_once_complete() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"da") == []
    assert decoder.feed(b"ta: hel") == []
    assert decoder.pending
    assert decoder.feed(b"lo\n") == []  # the line is done, the event is not
    assert [e.data for e in decoder.feed(b"\n")] == ["hello"]
    assert not decoder.pending


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"])
def test_every_line_ending(newline: bytes) -> None:
    body = b"data: a" + newline + b"data: b" + newline + newline + b"data: c" + newline * 2
    assert datas(body) == ["a\nb", "c"]


def test_crlf_split_between_reads_is_one_line_ending() -> None:
    # "\r" ends a read and "\n" starts the next: one line ending, not a blank line,
    # so the two data lines stay one event.
    assert datas(b"data: a\r", b"\ndata: b\r\n\r\n") == ["a\nb"]
    assert datas(b"data: a\r", b"\n", b"\r", b"\n") == ["a"]


def test_lone_cr_at_end_of_read_then_more_text() -> None:
    assert datas(b"data: a\r", b"\rdata: b\r\r") == ["a", "b"]


def test_comments_and_keepalives_are_ignored() -> None:
    assert datas(b": keep-alive\n\n:\n\n: OPENROUTER PROCESSING\n\ndata: x\n: mid\n\n") == ["x"]


def test_event_without_data_is_not_dispatched_and_resets_type() -> None:
    events = decode(b"event: ping\n\ndata: x\n\n")
    assert events == [ServerSentEvent("x", "message", None, None)]


def test_fields() -> None:
    events = decode(b"event: delta\nid: 7\nretry: 1500\ndata: x\n\ndata: y\n\n")
    assert events == [
        ServerSentEvent("x", "delta", "7", 1500),
        ServerSentEvent("y", "message", "7", 1500),
    ]


def test_invalid_id_and_retry_are_ignored() -> None:
    events = decode(b"id: 1\nretry: 10\n\nid: a\x00b\nretry: 5s\ndata: x\n\n")
    assert events == [ServerSentEvent("x", "message", "1", 10)]


def test_field_value_space_rules() -> None:
    # One space after the colon is dropped, a second kept; no colon: empty value.
    assert datas(b"data:x\n\ndata:  x\n\ndata\n\ndata:\ndata:\n\n") == ["x", " x", "", "\n"]
    assert datas(b"unknown: y\ndata: x\n\n") == ["x"]


def test_utf8_character_split_between_reads() -> None:
    raw = "data: héllo ☃ 🦊\n\n".encode()
    for cut in range(len(raw)):
        assert datas(raw[:cut], raw[cut:]) == ["héllo ☃ 🦊"], cut


def test_unicode_line_separators_inside_data_do_not_split_lines() -> None:
    # JSON may carry U+2028 raw; only CR and LF end a line in an event stream.
    text = 'data: {"t": "a\u2028b\x85c\x0cd"}\n\n'
    assert datas(text.encode()) == ['{"t": "a\u2028b\x85c\x0cd"}']


def test_invalid_utf8_is_replaced() -> None:
    assert datas(b"data: a\xffb\n\n") == ["a\ufffdb"]


def test_byte_order_mark_dropped_only_at_start() -> None:
    assert datas(b"\xef\xbb", b"\xbfdata: x\n\n") == ["x"]
    assert datas(b"data: x\n\n\xef\xbb\xbfdata: y\n\n") == ["x"]  # "\ufeffdata" is no field


def test_unfinished_event_at_end_is_not_dispatched() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: [DONE]\n") == []
    assert decoder.pending


def test_empty_reads() -> None:
    assert datas(b"", b"data: x\n", b"", b"\n", b"") == ["x"]


# Any events, written with any line endings and comments, cut into any reads,
# decode to the same events.

_text = st.text(st.characters(exclude_characters="\r\n", exclude_categories=["Cs"]))


@st.composite
def streams(draw: st.DrawFn) -> tuple[list[str], bytes]:
    datas = draw(st.lists(st.lists(_text, min_size=1, max_size=3), max_size=6))
    newline = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    out: list[str] = []
    for lines in datas:
        if draw(st.booleans()):
            out.append(":" + draw(_text) + newline)
        out += [f"data: {line}{newline}" for line in lines]
        out.append(newline)
    return ["\n".join(lines) for lines in datas], "".join(out).encode()


@given(streams(), st.lists(st.integers(min_value=0), max_size=20))
def test_any_chunking_decodes_the_same(stream: tuple[list[str], bytes], cuts: list[int]) -> None:
    expected, raw = stream
    points = sorted({c % (len(raw) + 1) for c in cuts})
    reads = [raw[a:b] for a, b in zip([0, *points], [*points, len(raw)], strict=True)]
    assert datas(*reads) == expected


# -- chat chunks ---------------------------------------------------------


def chunk(**choice: object) -> str:
    return json.dumps({"model": "m", "choices": [{"index": 0, **choice}]})


def test_read_chunk_content_role_finish() -> None:
    assert read_chunk(chunk(delta={"content": "Hi"})) == ChatChunk("Hi", None, "m")
    assert read_chunk(chunk(delta={"role": "assistant", "content": ""})).text == ""
    assert read_chunk(chunk(delta={}, finish_reason="stop")) == ChatChunk("", "stop", "m")
    assert read_chunk(chunk(delta={"content": None, "tool_calls": []})).text == ""


def test_read_chunk_empty_choices_is_a_usage_chunk() -> None:
    usage = json.dumps({"choices": [], "usage": {"total_tokens": 3}})
    assert read_chunk(usage) == ChatChunk(usage={"total_tokens": 3})


def test_read_chunk_reads_only_the_first_choice() -> None:
    data = json.dumps({"choices": [{"index": 1, "delta": {"content": "other"}}]})
    assert read_chunk(data).text == ""


def test_read_chunk_error_object() -> None:
    data = json.dumps({"error": {"message": "overloaded", "type": "server_error"}})
    assert read_chunk(data).error == "overloaded"
    assert read_chunk('{"error": "plain"}').error == "plain"


@pytest.mark.parametrize("data", ["[1, 2]", "not json", '"text"', "{"])
def test_read_chunk_rejects_what_is_not_an_object(data: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - json's errors are ValueErrors too
        read_chunk(data)


def test_error_message_shapes() -> None:
    assert error_message({"error": {"message": "m"}}) == "m"
    assert error_message({"message": "m"}) == "m"
    assert error_message({"error": {"code": 1}}) is None
    assert error_message(["m"]) is None


# -- ChatModel over odd streams (httpx.MockTransport) --------------------


def sse(*events: str) -> list[bytes]:
    return [f"data: {e}\n\n".encode() for e in events]


def token(text: str) -> str:
    return chunk(delta={"content": text})


def mock_model(
    reads: Sequence[bytes], *, status: int = 200, content_type: str = "text/event-stream"
) -> tuple[ChatModel, httpx.AsyncClient]:
    async def body() -> AsyncIterator[bytes]:
        for raw in reads:
            yield raw

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, headers={"content-type": content_type}, content=body())

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return ChatModel("http://mock/v1", "m", client=client), client


async def read_into(received: list[str], model: ChatModel) -> None:
    async with model.stream("hi") as tokens:
        async for text in tokens:
            received.append(text)


async def answer(reads: Sequence[bytes], **kwargs: object) -> list[str]:
    model, client = mock_model(reads, **kwargs)  # type: ignore[arg-type]
    async with client, model.stream("hi") as tokens:
        return [text async for text in tokens]


async def test_client_reads_tokens_whatever_the_reads() -> None:
    raw = b"".join([
        b": keep-alive\r\n\r\n",
        *sse(chunk(delta={"role": "assistant", "content": ""}), token("Hel"), token("lo"),
             chunk(delta={}, finish_reason="stop"),
             json.dumps({"choices": [], "usage": {"total_tokens": 2}}), "[DONE]"),
    ]).replace(b"\n\n", b"\r\n\r\n")
    whole = await answer([raw])
    assert whole == ["Hel", "lo"]
    assert await answer([raw[i:i + 1] for i in range(len(raw))]) == whole  # byte by byte
    assert await answer([raw[:7], raw[7:99], raw[99:]]) == whole


async def test_client_ignores_what_follows_done() -> None:
    assert await answer(sse(token("a"), "[DONE]", token("late"), "garbage")) == ["a"]


async def test_client_stream_without_done_is_an_error() -> None:
    model, client = mock_model(sse(token("a"), token("b")))
    received: list[str] = []
    async with client:
        with pytest.raises(LLMError, match="without 'data: \\[DONE\\]'") as info:
            await read_into(received, model)
    assert received == ["a", "b"]  # the tokens before the failure arrive first
    assert info.value.retryable
    assert info.value.status is None


async def test_client_error_event_mid_stream() -> None:
    error = json.dumps({"error": {"message": "model overloaded"}})
    model, client = mock_model(sse(token("a"), error, token("never")))
    received: list[str] = []
    async with client:
        with pytest.raises(LLMError, match="model overloaded") as info:
            await read_into(received, model)
    assert received == ["a"]
    assert info.value.message == "model overloaded"


async def test_client_malformed_chunk_is_an_error() -> None:
    with pytest.raises(LLMError, match="not a JSON object"):
        await answer(sse(token("a"), "{broken"))


async def test_client_json_body_instead_of_a_stream_names_the_content_type() -> None:
    with pytest.raises(LLMError, match="application/json"):
        await answer([b'{"choices": []}'], content_type="application/json")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"error": {"message": "bad key", "type": "auth"}}', "bad key"),
        (b"upstream exploded", "upstream exploded"),
        (b"", "Unauthorized"),
    ],
)
async def test_client_error_status_message(body: bytes, message: str) -> None:
    model, client = mock_model([body], status=401, content_type="application/json")
    async with client:
        with pytest.raises(LLMError) as info:
            await model.complete("hi")
    assert info.value.status == 401
    assert info.value.message == message
    assert not info.value.retryable



def test_pull_api_builds_events_one_at_a_time() -> None:
    decoder = SSEDecoder()
    decoder.receive_data(b"data: a\n\nid: 9\ndata: b\n\ndata: c")
    first = decoder.next_event()
    assert first is not None
    assert first.data == "a"
    assert first.id is None  # the id line after it is not read yet
    second = decoder.next_event()
    assert second == ServerSentEvent("b", "message", "9", None)
    assert decoder.next_event() is None
    assert decoder.pending  # "data: c" has no line end yet
    decoder.receive_data(b"\n\n")
    assert decoder.next_event() == ServerSentEvent("c", "message", "9", None)
