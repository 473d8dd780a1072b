"""Encoder driver core: binary frames from a serial byte stream to joint positions, velocities, efforts."""
from __future__ import annotations

from dataclasses import dataclass, field

from twin_core.config import describe
from twin_core.urdf import check_joint_names, default_joint_names
from twin_sensors.readers import SerialConfig
from twin_sensors.stats import DriverStats
from twin_sensors.timestamps import TimestampConfig
from twin_sensors.wire import (
    EncoderSample,
    FrameDecoder,
    MsgType,
    WireError,
    decode_encoder_payload,
    encoder_payload_size,
)


@dataclass(frozen=True)
class EncoderConfig:
    """Parameters of the encoder_driver node."""

    serial: SerialConfig = field(default_factory=lambda: SerialConfig(port='/tmp/twin_sim/encoders'))
    joint_names: tuple[str, ...] = field(default_factory=default_joint_names, metadata=describe(
        'Joint names, in the order of the encoder frame (default: the URDF\'s movable joints).'))
    timestamps: TimestampConfig = field(default_factory=TimestampConfig)

    def __post_init__(self) -> None:
        check_joint_names(self.joint_names)


class EncoderStream:
    """Decodes frames (CRC, resync, sequence gaps in ``decoder``); bad payloads are counted in ``stats``."""

    def __init__(self, config: EncoderConfig, stats: DriverStats) -> None:
        self.joints = len(config.joint_names)
        self.stats = stats
        # A length field beyond this frame's size is corrupt: resynchronise at once rather than
        # wait for kilobytes of later frames to fill a bogus payload.
        self.decoder = FrameDecoder(known_types=(MsgType.ENCODERS,), max_payload=encoder_payload_size(self.joints))

    def restart(self) -> None:
        """The source was reopened: drop the incomplete frame."""
        self.decoder.discard_partial()

    def feed(self, chunk: bytes) -> list[EncoderSample]:
        samples = []
        for frame in self.decoder.feed(chunk):
            try:
                sample = decode_encoder_payload(frame.payload)
            except WireError as error:
                self.stats.error(error.reason, str(error), payload=frame.payload)
                continue
            if len(sample.positions) != self.joints:
                self.stats.error('joint_count', f'frame has {len(sample.positions)} joints, expected {self.joints}')
                continue
            samples.append(sample)
        self.stats.messages += len(samples)
        return samples
