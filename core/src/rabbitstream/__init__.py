"""rabbitstream: a fast asyncio client for RabbitMQ Streams.

The public API is a superset of rstream's: ``from rabbitstream import Producer,
Consumer, AMQPMessage, ...`` works as ``from rstream import ...`` did.  Names are
imported lazily (on first attribute access), so ``import rabbitstream`` stays
cheap and loads no plugin.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__license__ = "MIT"

#: public name -> defining module (relative to this package)
_EXPORTS: dict[str, str] = {
    # messages (the AMQP names resolve through the codec plugin)
    "AMQPMessage": "amqp",
    "Header": "amqp",
    "Properties": "amqp",
    "amqp_decoder": "amqp",
    "amqp_decoder_str": "amqp",
    "RawMessage": "utils",
    # clients
    "Client": "_client",
    "Producer": "_producer",
    "Consumer": "_consumer",
    "MessageContext": "_consumer",
    "EventContext": "_consumer",
    "SuperStreamProducer": "_superstream_producer",
    "SuperStreamConsumer": "_superstream_consumer",
    "RouteType": "superstream",
    "SuperStreamCreationOption": "superstream",
    # values
    "OffsetType": "constants",
    "ConsumerOffsetSpecification": "constants",
    "OffsetSpecification": "constants",
    "SlasMechanism": "constants",
    "SaslMechanism": "constants",
    "ConfirmationStatus": "utils",
    "OnClosedErrorInfo": "utils",
    "FilterConfiguration": "utils",
    "CompressionType": "compression",
    "BackOffRecoveryStrategy": "recovery",
    "RecoveryStrategy": "recovery",
    # errors
    "RabbitStreamError": "exceptions",
    "ServerError": "exceptions",
    "ClientError": "exceptions",
    "ConnectionClosed": "exceptions",
    "OffsetNotFound": "exceptions",
    "StreamDoesNotExist": "exceptions",
    "StreamAlreadyExists": "exceptions",
    # plugins
    "hookimpl": "plugin",
}

__all__ = sorted(_EXPORTS)
_SUBMODULES = {"amqp", "compression", "constants", "exceptions", "plugin", "protocol", "recovery",
               "superstream", "testing", "utils"}

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
    from rabbitstream._client import Client
    from rabbitstream._consumer import Consumer, EventContext, MessageContext
    from rabbitstream._producer import Producer
    from rabbitstream.constants import (
        ConsumerOffsetSpecification,
        OffsetSpecification,
        OffsetType,
        SaslMechanism,
        SlasMechanism,
    )
    from rabbitstream.exceptions import (
        ClientError,
        ConnectionClosed,
        OffsetNotFound,
        RabbitStreamError,
        ServerError,
        StreamAlreadyExists,
        StreamDoesNotExist,
    )
    from rabbitstream.plugin import hookimpl
    from rabbitstream.recovery import BackOffRecoveryStrategy, RecoveryStrategy
    from rabbitstream.utils import ConfirmationStatus, FilterConfiguration, OnClosedErrorInfo, RawMessage


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        if name in _SUBMODULES:
            return importlib.import_module(f"{__name__}.{name}")
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__) | _SUBMODULES)
