"""Kafka plumbing shared by producers and the worker: client settings and topic definitions."""

from ingestor.kafka.config import ClientKwargs, client_kwargs, faust_credentials, ssl_context
from ingestor.kafka.topics import DEFINITIONS, TopicDef, create_topics, load_topic_defs

__all__ = [
    "DEFINITIONS",
    "ClientKwargs",
    "TopicDef",
    "client_kwargs",
    "create_topics",
    "faust_credentials",
    "load_topic_defs",
    "ssl_context",
]
