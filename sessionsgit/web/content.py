"""Messages and fork trees as plain data for the templates: text split into prose and code
blocks, images kept only as safe ``data:image/...`` URLs, the fork tree laid out for SVG.
Everything here is data; the templates escape every string they print."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Sequence

from ..messages import LABELS, message_parts, role_of
from ..metadata import SessionMetadata
from ..render import short_session_id, tree_records

_FENCE = re.compile(r"```([\w+.#-]*)[^\n]*\n(.*?)(?:```|\Z)", re.S)
#: Images shown inline: raster types only, base64 only (an SVG image could carry script).
_DATA_IMAGE = re.compile(r"data:image/(png|jpeg|jpg|gif|webp);base64,[A-Za-z0-9+/=\s]+\Z")
_MAX_IMAGES = 20


@dataclass
class Block:
    """One piece of a message: ``kind`` (a ``messages.Part`` kind), its label, its text split
    into (is_code, language, text) segments, and an image's data URL when it has one."""

    kind: str
    label: str
    segments: list[tuple[bool, str, str]] = field(default_factory=list)
    image: str | None = None


@dataclass
class ShownMessage:
    index: int
    role: str
    blocks: list[Block]


def segments(text: str) -> list[tuple[bool, str, str]]:
    """``text`` as prose and fenced code blocks, in order."""
    out: list[tuple[bool, str, str]] = []
    cursor = 0
    for match in _FENCE.finditer(text):
        if match.start() > cursor:
            out.append((False, "", text[cursor:match.start()]))
        out.append((True, match.group(1), match.group(2)))
        cursor = match.end()
    if cursor < len(text):
        out.append((False, "", text[cursor:]))
    return out


def image_urls(message: Any) -> list[str]:
    """Every inline image of a message as a ``data:image/...;base64,`` URL (Anthropic
    ``source`` blocks, OpenAI ``image_url``/``input_image``, plain data URLs), in order."""
    found: list[str] = []
    stack: list[Any] = [message]
    while stack and len(found) < _MAX_IMAGES:
        node = stack.pop()
        if isinstance(node, dict):
            source = node.get("source")
            if isinstance(source, dict) and source.get("type") == "base64" and \
                    isinstance(source.get("data"), str) and isinstance(source.get("media_type"), str):
                _add(found, f"data:{source['media_type']};base64,{source['data']}")
                continue
            stack.extend(reversed(list(node.values())))
        elif isinstance(node, list):
            stack.extend(reversed(node))
        elif isinstance(node, str) and node.startswith("data:image/"):
            _add(found, node)
    return found


def _add(found: list[str], url: str) -> None:
    if _DATA_IMAGE.match(url):
        found.append(url)


def shown_message(index: int, message: Any) -> ShownMessage:
    """A message as blocks for the transcript template."""
    images = image_urls(message)
    blocks = []
    for kind, text in message_parts(message):
        block = Block(kind, LABELS.get(kind, ""))
        if kind == "image" and images:
            block.image = images.pop(0)
        else:
            block.segments = segments(text) if kind in ("text", "other", "tool_result") \
                else [(kind == "tool_call", "", text)]
        blocks.append(block)
    blocks += [Block("image", "image", image=url) for url in images]
    return ShownMessage(index, role_of(message) or "?", blocks)


@dataclass
class TreeNode:
    id: str
    short: str
    label: str | None
    count: int
    x: int
    y: int
    detached: bool
    fork_message_id: str | None
    parent: tuple[int, int] | None  #: the parent node's (x, y)
    fork_at: int | None = None  #: how many of the parent's messages it inherited


ROW, INDENT, MARGIN = 34, 28, 16


def tree_layout(sessions: Sequence[SessionMetadata], fork_points: dict[str, int | None] | None = None
                ) -> tuple[list[TreeNode], int, int]:
    """The fork tree as positioned nodes (one row each, indented by depth) with an edge to the
    parent and, when known, the fork point (messages inherited); returns (nodes, width,
    height) of the picture."""
    fork_points = fork_points or {}
    by_id = {meta.id: meta for meta in sessions}
    nodes: list[TreeNode] = []
    position: dict[str, tuple[int, int]] = {}
    for row, record in enumerate(tree_records(sessions)):
        x, y = MARGIN + record["depth"] * INDENT, MARGIN + row * ROW
        meta = by_id[record["id"]]
        parent = position.get(record["parent_id"]) if record["depth"] else None
        position[record["id"]] = (x, y)
        nodes.append(TreeNode(record["id"], short_session_id(record["id"]), record["label"],
                              record["message_count"], x, y, bool(record["detached"]),
                              meta.fork_message_id, parent, fork_points.get(record["id"])))
    width = max((n.x for n in nodes), default=0) + 520
    height = MARGIN * 2 + max(len(nodes) - 1, 0) * ROW + 10
    return nodes, width, height
