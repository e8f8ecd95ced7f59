"""The network input BodyPoseNet is exported at: `-d height,width,channels` (channels_last).

Plain data, no TensorFlow: the CLI checks `-d` before any model is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass

from bodypose_exporter.errors import UserError


@dataclass(frozen=True)
class InputDims:
    """Network input, channels_last: height, width, channels."""

    height: int
    width: int
    channels: int

    @classmethod
    def parse(cls, text: str) -> InputDims:
        try:
            values = [int(v) for v in text.replace(" ", "").split(",")]
        except ValueError:
            values = []
        if len(values) != 3:
            raise UserError(
                f"-d/--input_dims {text!r}: give three comma-separated integers, "
                "height,width,channels (channels_last), for example 320,448,3"
            )
        dims = cls(*values)
        dims.validate()
        return dims

    def validate(self) -> None:
        bad = [
            f"{n} {v}"
            for n, v in (("height", self.height), ("width", self.width))
            if v % 8 or v <= 0
        ]
        if bad:
            raise UserError(
                f"-d/--input_dims: {' and '.join(bad)} must be a positive multiple of 8 "
                "(the network's stride is 8; multiples of 16, 32 or 64 are better still)"
            )
        if self.channels != 3:
            raise UserError(
                f"-d/--input_dims: channels must be 3 (BodyPoseNet takes RGB images), got "
                f"{self.channels}"
            )

    def as_list(self) -> list[int]:
        return [self.height, self.width, self.channels]

    @property
    def height_width(self) -> tuple[int, int]:
        """(height, width): the spatial size every stage after the export works at."""
        return self.height, self.width
