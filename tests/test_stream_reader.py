"""The Server-Sent Events parser that tail_events and the tests read streams with."""

from publisher.stream_reader import Comment, Message, messages


def test_messages_comments_and_ids_are_parsed_across_chunk_boundaries():
    body = (
        b"retry: 1000\nid: 0\n\n"
        b": keep-alive\n\n"
        b'id: 3-17-5\nevent: event\ndata: {"a":\r\ndata: 1}\n\n'
        b"id: 4\n\n"
        b"event: overflow\ndata: {}\n\n"
    )
    chunks = [body[i : i + 7] for i in range(0, len(body), 7)]  # lines split anywhere

    assert list(messages(chunks)) == [
        Message("", "", "0"),
        Comment("keep-alive"),
        Message("event", '{"a":\n1}', "3-17-5"),
        Message("", "", "4"),
        Message("overflow", "{}", "4"),  # the last id seen still applies
    ]


def test_an_unfinished_message_at_the_end_is_not_dispatched():
    assert list(messages([b"id: 1\nevent: event\ndata: {}\n"])) == []
