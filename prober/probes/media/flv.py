"""Reading the FLV container tag by tag, as it arrives: what HTTP-FLV and RTMP carry.

An FLV stream is a 9-byte header (`FLV`, version 1, flags, header size), then tags, each an 11-byte
header (type 8 audio / 9 video / 18 script data, 24-bit size, 24+8-bit millisecond timestamp, stream id
0), its data, and a 4-byte "previous tag size". `FlvReader.feed(chunk, arrived_at)` takes bytes as they
come off the wire and returns the complete tags in them, each with the wall time its last byte arrived,
so the pace of a live stream can be measured against the wall clock. Video tags say whether they are a
keyframe and which codec (legacy codec ids and the Enhanced RTMP FourCCs); audio tags their format.
Sequence headers (AVC/HEVC decoder configuration, AAC AudioSpecificConfig) are marked: they are
configuration, not media, and `rebuild` puts them in front of any run of tags so FFmpeg can decode a GOP
cut out of the middle of a stream.

Bounded: a tag larger than `MAX_TAG_BYTES` or of an unknown type is garbage (FlvError naming the byte
offset), and the reader keeps only what the caller asks it to (`keep`). Pure: no I/O, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["MAX_TAG_BYTES", "FlvError", "FlvReader", "FlvTag", "rebuild"]

MAX_TAG_BYTES = 8 * 1024 * 1024
"""A tag bigger than this is not a frame (a 4K intra frame is a few MB): the stream is not FLV, or is hostile.
The field allows up to 16 MiB."""

_HEADER_BYTES = 9
_TAG_HEADER_BYTES = 11
_KINDS: dict[int, Literal["audio", "video", "script"]] = {8: "audio", 9: "video", 18: "script"}
_VIDEO_CODECS = {2: "h263", 3: "screen", 4: "vp6", 5: "vp6a", 6: "screen2", 7: "h264", 12: "hevc", 13: "av1"}
_FOURCCS = {b"avc1": "h264", b"hvc1": "hevc", b"av01": "av1", b"vp09": "vp9", b"vp08": "vp8"}
_AUDIO_CODECS = {0: "pcm", 1: "adpcm", 2: "mp3", 3: "pcm", 4: "nellymoser", 5: "nellymoser", 6: "nellymoser"}
_AUDIO_CODECS.update({7: "alaw", 8: "mulaw", 10: "aac", 11: "speex", 14: "mp3", 15: "device"})


class FlvError(ValueError):
    """The bytes are not an FLV stream (or stop being one); the message names the byte offset."""


@dataclass(frozen=True, slots=True)
class FlvTag:
    """One tag: what it is, where it sits in the stream and when it had fully arrived."""

    kind: Literal["audio", "video", "script"]
    timestamp: float
    """Seconds: the tag's timestamp (milliseconds in the stream)."""
    offset: int
    """Byte offset of the tag header from the start of the stream."""
    size: int
    """Bytes of the whole tag: header, data and the previous-tag-size field after it."""
    arrived_at: float
    keyframe: bool = False
    config: bool = False
    """A sequence header (decoder configuration), not media."""
    codec: str | None = None


def _video(data: bytes) -> tuple[bool, bool, str | None]:
    """(keyframe, sequence header, codec) of a video tag's data."""
    if not data:
        return False, False, None
    first = data[0]
    if first & 0x80:  # Enhanced RTMP: IsExHeader, FrameType (3 bits), PacketType (4 bits), FourCC
        frame_type, packet_type = (first >> 4) & 0x07, first & 0x0F
        codec = _FOURCCS.get(bytes(data[1:5]), bytes(data[1:5]).decode("latin-1") or None)
        return frame_type == 1, packet_type in (0, 4), codec
    frame_type, codec_id = first >> 4, first & 0x0F
    config = codec_id in (7, 12, 13) and len(data) > 1 and data[1] == 0
    return frame_type == 1, config, _VIDEO_CODECS.get(codec_id, f"codec {codec_id}")


def _audio(data: bytes) -> tuple[bool, str | None]:
    """(sequence header, codec) of an audio tag's data."""
    if not data:
        return False, None
    sound_format = data[0] >> 4
    config = sound_format == 10 and len(data) > 1 and data[1] == 0
    return config, _AUDIO_CODECS.get(sound_format, f"codec {sound_format}")


class FlvReader:
    """Incremental FLV parser: `feed` bytes in arrival order, get complete tags back."""

    def __init__(self) -> None:
        self._pending = bytearray()
        self._offset = 0
        """Stream offset of `_pending[0]`."""
        self.header: bytes | None = None
        self.has_audio = False
        self.has_video = False

    @property
    def position(self) -> int:
        """Bytes consumed so far (parsed tags and header)."""
        return self._offset

    def feed(self, chunk: bytes, arrived_at: float) -> list[FlvTag]:
        self._pending += chunk
        tags: list[FlvTag] = []
        if self.header is None and not self._read_header():
            return tags
        while len(self._pending) >= _TAG_HEADER_BYTES:
            head = self._pending[:_TAG_HEADER_BYTES]
            kind = _KINDS.get(head[0] & 0x1F)
            size = int.from_bytes(head[1:4], "big")
            if kind is None:
                raise FlvError(
                    f"not valid FLV at byte {self._offset}: tag type {head[0] & 0x1F} is not audio (8), "
                    f"video (9) or script data (18)"
                )
            if size > MAX_TAG_BYTES:
                raise FlvError(f"not valid FLV at byte {self._offset}: a {size:,}-byte tag is larger than any frame")
            total = _TAG_HEADER_BYTES + size + 4
            if len(self._pending) < total:
                break
            millis = int.from_bytes(head[4:7], "big") | (head[7] << 24)
            data = bytes(self._pending[_TAG_HEADER_BYTES : _TAG_HEADER_BYTES + size])
            keyframe, config, codec = False, False, None
            if kind == "video":
                keyframe, config, codec = _video(data)
            elif kind == "audio":
                config, codec = _audio(data)
            tags.append(FlvTag(kind, millis / 1000.0, self._offset, total, arrived_at, keyframe, config, codec))
            del self._pending[:total]
            self._offset += total
        return tags

    def _read_header(self) -> bool:
        if len(self._pending) < 3:
            if not b"FLV".startswith(bytes(self._pending)):
                raise FlvError(f"the stream does not start with an FLV header: {bytes(self._pending)!r}")
            return False
        if self._pending[:3] != b"FLV":
            raise FlvError(f"the stream does not start with an FLV header: {bytes(self._pending[:16])!r}")
        if len(self._pending) < _HEADER_BYTES + 4:
            return False
        size = int.from_bytes(self._pending[5:9], "big")
        if size < _HEADER_BYTES or size > 1024:
            raise FlvError(f"the FLV header gives an impossible header size of {size} bytes")
        if len(self._pending) < size + 4:
            return False
        flags = self._pending[4]
        self.has_audio, self.has_video = bool(flags & 0x04), bool(flags & 0x01)
        self.header = bytes(self._pending[:size]) + b"\x00\x00\x00\x00"
        del self._pending[: size + 4]
        self._offset = size + 4
        return True


def rebuild(header: bytes, configs: list[bytes], tags: list[bytes]) -> bytes:
    """A decodable FLV: the stream's header, its sequence headers, then the given tags (raw bytes each)."""
    return b"".join((header, *configs, *tags))
