"""Every message a real stream sends is its model (service/schemas.py) to the letter, and
valid against the schema /openapi.json documents for it (components StreamServerMessage)."""

from __future__ import annotations

import jsonschema_rs
from fastapi.testclient import TestClient

from service.schemas import StreamClientMessage, StreamServerMessage
from tests.service.support import Closed, InProcessWs, jpeg, make_app, png


def documented(openapi: dict, name: str):
    """A validator for the component ``name`` of /openapi.json, its references resolved."""
    schema = {"$ref": f"#/components/schemas/{name}", "components": openapi["components"]}
    return jsonschema_rs.validator_for(schema)


def check_messages(messages: list[dict], openapi: dict) -> set[str]:
    """Each message parses as its model, which dumps it back unchanged (same fields, order
    and nulls), and the documented schema accepts it; returns the types seen."""
    validator = documented(openapi, "StreamServerMessage")
    for m in messages:
        model = StreamServerMessage.model_validate(m).root
        dumped = model.model_dump(mode="json")
        assert dumped == m and list(dumped) == list(m), (m, dumped)
        errors = [e.message for e in validator.iter_errors(m)]
        assert not errors, (m["type"], errors)
    return {m["type"] for m in messages}


def test_every_message_of_a_real_stream_is_its_model_and_documented(api, genuine_clip):
    frames, fps = genuine_clip
    openapi = api.http.get("/openapi.json").json()
    seen: list[dict] = []
    with api.ws() as ws:
        ws.send_json({"type": "start", "fps": fps, "nonce": "check-1"})
        seen.append(ws.recv())
        for i, f in enumerate(frames):  # one answer per frame, read as it comes
            ws.send_bytes(b"not an image" if i == 20 else png(f))  # 20: bad_frame, goes on
            seen.append(ws.recv())
        ws.send_json({"type": "end"})
        result, closed = ws.recv(), ws.recv()
    assert isinstance(closed, Closed) and result["type"] == "result"
    kinds = check_messages([*seen, result], openapi)
    assert {"ready", "frame", "error", "result"} <= kinds
    assert any(m["type"] == "error" and m["index"] == 20 for m in seen)
    with api.ws() as ws:  # the errors that end a stream: no frame, then an unknown message
        ws.send_json({"type": "end"})
        too_few, closed = ws.recv(), ws.recv()
    with api.ws() as ws:
        ws.send_json({"type": "stop"})
        unknown, closed_unknown = ws.recv(), ws.recv()
    assert check_messages([too_few, unknown], openapi) == {"error"}
    assert too_few["code"] == "too_few_frames" and unknown["code"] == "bad_message"
    assert isinstance(closed, Closed) and isinstance(closed_unknown, Closed)
    client = documented(openapi, "StreamClientMessage")
    for sent in ({"type": "start", "fps": fps, "nonce": "check-1"}, {"type": "end"}):
        assert client.is_valid(sent) and StreamClientMessage.model_validate(sent)
    assert not client.is_valid({"type": "start", "fps": 0})


def test_dropped_frames_are_their_model_too(tiny_model_dir, genuine_clip):
    frames, _ = genuine_clip
    with TestClient(make_app(tiny_model_dir, max_stream_fps=5.0)) as client:
        openapi = client.get("/openapi.json").json()
        with client.websocket_connect("/v1/stream") as session:
            ws = InProcessWs(session)
            ws.send_json({"type": "start", "fps": 5})
            for f in frames:  # as fast as possible: far over 5 fps
                ws.send_bytes(jpeg(f))
            ws.send_json({"type": "end"})  # answered with a result, or too_few_frames
            seen = []
            while not isinstance(m := ws.recv(), Closed):
                seen.append(m)
    assert "dropped" in check_messages(seen, openapi)
