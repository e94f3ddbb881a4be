"""Adversarial review of the Gemini translation: one regression test per bug found (pure: no process, no network)."""

from __future__ import annotations

from tests.support.pipeline import image_messages, make_rule, up_body


def test_gemini_image_jpg_label_is_sent_as_jpeg():
    """Gemini answers 400 "Unsupported MIME type: image/jpg" (INVALID_ARGUMENT) to the common `data:image/jpg`
    label, which was forwarded verbatim into inlineData.mimeType."""
    body = up_body(
        make_rule("gemini", "gemini-2.5-flash"), {"messages": image_messages("data:image/jpg;base64,/9j/4AAQ")}
    )
    assert body["contents"][0]["parts"][1] == {"inlineData": {"mimeType": "image/jpeg", "data": "/9j/4AAQ"}}
    body = up_body(
        make_rule("gemini", "gemini-2.5-flash"), {"messages": image_messages("data:image/WEBP;base64,UklGR")}
    )
    assert body["contents"][0]["parts"][1]["inlineData"]["mimeType"] == "image/webp"
