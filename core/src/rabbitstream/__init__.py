"""rabbitstream: a fast asyncio client for RabbitMQ Streams.

The public API is a superset of rstream's: ``from rabbitstream import Producer,
Consumer, AMQPMessage, ...`` works as ``from rstream import ...`` did.  Names are
imported lazily (on first attribute access), so ``import rabbitstream`` stays
cheap and loads no plugin.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from rabbitstream._version import __version__ as __version__

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
    "Client": "_connection",
    "CredentialsProvider": "_connection",
    "Producer": "_producer",
    "Consumer": "_consumer",
    "MessageContext": "_consumer",
    "EventContext": "_consumer",
    "MessageBatch": "_consumer",
    "CreditPolicy": "_consumer",
    "OffsetTracking": "_consumer",
    "SuperStreamProducer": "_superstream",
    "SuperStreamConsumer": "_superstream",
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
    "StateChange": "_connection",
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
_SUBMODULES = {
    "amqp",
    "compression",
    "constants",
    "exceptions",
    "plugin",
    "protocol",
    "recovery",
    "superstream",
    "testing",
    "utils",
}

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
    from rabbitstream._connection import Client as Client
    from rabbitstream._connection import CredentialsProvider as CredentialsProvider
    from rabbitstream._connection import StateChange as StateChange
    from rabbitstream._consumer import Consumer as Consumer
    from rabbitstream._consumer import CreditPolicy as CreditPolicy
    from rabbitstream._consumer import EventContext as EventContext
    from rabbitstream._consumer import MessageBatch as MessageBatch
    from rabbitstream._consumer import MessageContext as MessageContext
    from rabbitstream._consumer import OffsetTracking as OffsetTracking
    from rabbitstream._producer import Producer as Producer
    from rabbitstream._superstream import SuperStreamConsumer as SuperStreamConsumer
    from rabbitstream._superstream import SuperStreamProducer as SuperStreamProducer
    from rabbitstream.amqp import AMQPMessage as AMQPMessage
    from rabbitstream.amqp import Header as Header
    from rabbitstream.amqp import Properties as Properties
    from rabbitstream.amqp import amqp_decoder as amqp_decoder
    from rabbitstream.amqp import amqp_decoder_str as amqp_decoder_str
    from rabbitstream.compression import CompressionType as CompressionType
    from rabbitstream.constants import ConsumerOffsetSpecification as ConsumerOffsetSpecification
    from rabbitstream.constants import OffsetSpecification as OffsetSpecification
    from rabbitstream.constants import OffsetType as OffsetType
    from rabbitstream.constants import SaslMechanism as SaslMechanism
    from rabbitstream.constants import SlasMechanism as SlasMechanism
    from rabbitstream.exceptions import ClientError as ClientError
    from rabbitstream.exceptions import ConnectionClosed as ConnectionClosed
    from rabbitstream.exceptions import OffsetNotFound as OffsetNotFound
    from rabbitstream.exceptions import RabbitStreamError as RabbitStreamError
    from rabbitstream.exceptions import ServerError as ServerError
    from rabbitstream.exceptions import StreamAlreadyExists as StreamAlreadyExists
    from rabbitstream.exceptions import StreamDoesNotExist as StreamDoesNotExist
    from rabbitstream.plugin import hookimpl as hookimpl
    from rabbitstream.recovery import BackOffRecoveryStrategy as BackOffRecoveryStrategy
    from rabbitstream.recovery import RecoveryStrategy as RecoveryStrategy
    from rabbitstream.superstream import RouteType as RouteType
    from rabbitstream.superstream import SuperStreamCreationOption as SuperStreamCreationOption
    from rabbitstream.utils import ConfirmationStatus as ConfirmationStatus
    from rabbitstream.utils import FilterConfiguration as FilterConfiguration
    from rabbitstream.utils import OnClosedErrorInfo as OnClosedErrorInfo
    from rabbitstream.utils import RawMessage as RawMessage


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
