"""A checker for Slack incoming-webhook bodies: Block Kit's documented limits and mrkdwn escaping.

Limits from https://api.slack.com/reference/block-kit/blocks and .../composition-objects;
escaping from https://api.slack.com/reference/surfaces/formatting#escaping: in text that
Slack parses, ``&``, ``<`` and ``>`` are control characters and must arrive as ``&amp;``,
``&lt;`` and ``&gt;`` unless they form a link the sender meant.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any

MAX_BLOCKS = 50
MAX_MESSAGE_TEXT = 40_000
MAX_SECTION_TEXT = 3000
MAX_FIELDS = 10
MAX_FIELD_TEXT = 2000
MAX_HEADER_TEXT = 150
MAX_ACTIONS = 25
MAX_BUTTON_TEXT = 75
MAX_URL = 3000
MAX_CONTEXT = 10
MAX_BLOCK_ID = 255
_CONTROL = re.compile(r"&(?!amp;|lt;|gt;)|<[^>]*>?|>")
_LINK = re.compile(r"^<(https?://[^|<>]+)\|[^<>]+>$")


class SlackPayloadError(AssertionError):
    """The body would be refused by Slack, or lets user text form links or mentions."""


def check_payload(body: dict[str, Any], links: Collection[str] = ()) -> None:
    """Raise SlackPayloadError naming the first limit or escaping rule ``body`` breaks.

    ``links`` are the URLs the sender meant to link (``<url|label>``); any other ``<...>`` is
    an injected link, mention (``<!channel>``, ``<@U1>``) or broken markup.
    """
    text = body.get("text")
    if not isinstance(text, str) or not 1 <= len(text) <= MAX_MESSAGE_TEXT:
        raise SlackPayloadError(f"text: expected 1 to {MAX_MESSAGE_TEXT} characters, got {text!r:.80}")
    _check_escaped("text", text, links)
    blocks = body.get("blocks", [])
    if len(blocks) > MAX_BLOCKS:
        raise SlackPayloadError(f"blocks: at most {MAX_BLOCKS}, got {len(blocks)}")
    for i, block in enumerate(blocks):
        _check_block(f"blocks[{i}]", block, links)


def _check_block(where: str, block: dict[str, Any], links: Collection[str]) -> None:
    if len(block.get("block_id", "")) > MAX_BLOCK_ID:
        raise SlackPayloadError(f"{where}.block_id: at most {MAX_BLOCK_ID} characters")
    kind = block.get("type")
    if kind == "section":
        _check_section(where, block, links)
    elif kind == "header":
        _check_text(f"{where}.text", block["text"], MAX_HEADER_TEXT, links, kinds=("plain_text",))
    elif kind == "actions":
        _check_actions(where, block["elements"])
    elif kind == "context":
        _check_count(f"{where}.elements", block["elements"], MAX_CONTEXT)
        for j, element in enumerate(block["elements"]):
            _check_text(f"{where}.elements[{j}]", element, MAX_SECTION_TEXT, links)
    elif kind != "divider":
        raise SlackPayloadError(f"{where}.type: expected a block type this checker knows, got {kind!r}")


def _check_section(where: str, block: dict[str, Any], links: Collection[str]) -> None:
    if "text" not in block and "fields" not in block:
        raise SlackPayloadError(f"{where}: a section needs text or fields")
    if "text" in block:
        _check_text(f"{where}.text", block["text"], MAX_SECTION_TEXT, links)
    fields = block.get("fields", [])
    if "fields" in block:
        _check_count(f"{where}.fields", fields, MAX_FIELDS)
    for j, field in enumerate(fields):
        _check_text(f"{where}.fields[{j}]", field, MAX_FIELD_TEXT, links)


def _check_actions(where: str, elements: list[dict[str, Any]]) -> None:
    _check_count(f"{where}.elements", elements, MAX_ACTIONS)
    for j, element in enumerate(elements):
        if element.get("type") != "button":
            raise SlackPayloadError(f"{where}.elements[{j}]: expected a button")
        _check_text(f"{where}.elements[{j}].text", element["text"], MAX_BUTTON_TEXT, (), kinds=("plain_text",))
        if not 1 <= len(element.get("url", "x")) <= MAX_URL:
            raise SlackPayloadError(f"{where}.elements[{j}].url: at most {MAX_URL} characters")


def _check_count(where: str, items: list[Any], most: int) -> None:
    if not 1 <= len(items) <= most:
        raise SlackPayloadError(f"{where}: expected 1 to {most} items, got {len(items)}")


def _check_text(
    where: str,
    obj: dict[str, Any],
    most: int,
    links: Collection[str],
    kinds: tuple[str, ...] = ("plain_text", "mrkdwn"),
) -> None:
    if obj.get("type") not in kinds:
        raise SlackPayloadError(f"{where}.type: expected one of {kinds}, got {obj.get('type')!r}")
    text = obj.get("text", "")
    if not 1 <= len(text) <= most:
        raise SlackPayloadError(f"{where}.text: expected 1 to {most} characters, got {len(text)}")
    if obj["type"] == "mrkdwn":
        _check_escaped(f"{where}.text", text, links)


def _check_escaped(where: str, text: str, links: Collection[str]) -> None:
    for found in _CONTROL.finditer(text):
        link = _LINK.match(found.group())
        if link and link.group(1) in links:
            continue
        raise SlackPayloadError(f"{where}: unescaped control characters {found.group()!r:.60} at {found.start()}")
